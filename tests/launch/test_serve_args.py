"""`make serve`'s model flags reach the predictor: what to serve and the version it is."""

from __future__ import annotations

from launch.serve import Ports, build_parser, model_args, servers


def test_the_declared_version_is_passed_to_the_predictor() -> None:
    args = build_parser().parse_args(["--model_dir", "models/model", "--model_version", "7"])
    predictor, transformer = servers(Ports(), model_args(args))
    flags = predictor.cmd[predictor.cmd.index("model") + 1 :]
    assert flags[flags.index("--model_dir") + 1] == "models/model"
    assert flags[flags.index("--model_version") + 1] == "7"
    assert "--model_version" not in transformer.cmd
    # Nothing said: the predictor's defaults (the champion, pinned at start-up).
    assert model_args(build_parser().parse_args([])) == []
