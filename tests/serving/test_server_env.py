"""The servers run with the same runtime environment locally (`launch.serve`) and in their
images: one BLAS thread, malloc that keeps freed memory (docs/serving.md, Performance)."""

from __future__ import annotations

import re
from pathlib import Path

from bukva.settings import Settings
from launch.serve import SERVER_RUNTIME_ENV, Ports, servers

ROOT = Path(__file__).resolve().parents[2]


def test_images_set_the_launchers_runtime_env() -> None:
    # Both server images are targets of the shared Dockerfile built FROM its `servers` stage.
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    by_name = {s.split()[2]: s for s in stages if len(s.split()) > 2 and s.split()[1] == "AS"}
    for target in ("predictor", "transformer"):
        assert by_name[target].split()[0] == "servers", f"{target} is not built FROM servers"
    env_lines = [line for line in by_name["servers"].splitlines() if line.startswith("ENV ")]
    assignments = {word for line in env_lines for word in line.split()[1:]}
    for key, value in SERVER_RUNTIME_ENV.items():
        assert f"{key}={value}" in assignments, f"the servers stage lacks {key}={value}"


def test_local_servers_get_the_runtime_env() -> None:
    for server in servers(Ports(), [], settings=Settings.from_env({})):
        assert SERVER_RUNTIME_ENV.items() <= server.env.items()


def test_local_runs_bind_loopback_and_images_all_interfaces() -> None:
    """`make up` prints 127.0.0.1 and listens there; the images (no --bind) keep 0.0.0.0,
    what a pod needs; the app's /metrics listens where the app does."""
    from launch.serve import app
    from transformer.__main__ import build_parser

    for server in servers(Ports(), [], settings=Settings.from_env({})):
        assert server.cmd[server.cmd.index("--bind") + 1] == "127.0.0.1"
    assert build_parser().parse_args(["--predictor_host", "x:1"]).bind == "0.0.0.0"
    assert app(8501, None).env["BUKVA_METRICS_ADDRESS"] == "127.0.0.1"
    assert app(8501, None, "0.0.0.0").env["BUKVA_METRICS_ADDRESS"] == "0.0.0.0"
