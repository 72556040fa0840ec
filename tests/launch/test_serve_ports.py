"""`make up` on other ports (`SERVE_ARGS`): the app it starts calls the transformer it starts."""

from __future__ import annotations

from pathlib import Path

from bukva.settings import Settings
from launch.serve import Ports, _companions, build_parser


def _app_env(tmp_path: Path, *flags: str) -> dict:
    args = build_parser().parse_args(["--app", "--mlflow_port", "0", *flags])
    ports = Ports(
        args.http_port, args.grpc_port, args.predictor_http_port, args.predictor_grpc_port
    )
    settings = Settings.from_env({"BUKVA_HOME": str(tmp_path)})
    (app,) = [p for p in _companions(args, ports, settings) if p.name == "app"]
    return app.env


def test_the_app_calls_the_transformer_on_the_port_given(tmp_path: Path) -> None:
    env = _app_env(tmp_path, "--http_port", "18080", "--app_port", "18501")
    assert env["BUKVA_INFERENCE_URL"] == "http://127.0.0.1:18080"


def test_the_app_alone_keeps_the_configured_inference_url(tmp_path: Path) -> None:
    # `make app`: no servers here, so BUKVA_INFERENCE_URL stays what the environment says.
    env = _app_env(tmp_path, "--no_servers", "--http_port", "18080")
    assert "BUKVA_INFERENCE_URL" not in env
