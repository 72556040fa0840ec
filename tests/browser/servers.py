"""Real services for the browser tests, each on a free 127.0.0.1 port, stopped afterwards.

Every process is a `launch.processes.Process` started the way `make` starts it (the servers'
and the app's command lines come from `launch.serve`), with its log in a file (shown when it
fails to start) and a readiness URL to wait for. The S3 endpoint (moto standing in for MinIO)
is `tests.support.s3.MotoS3`: it can be stopped and started again on the same port; moto keeps
its buckets in this process meanwhile, as MinIO keeps them on its volume.
"""

from __future__ import annotations

import sys
from pathlib import Path

from launch.processes import Process, free_port
from launch.serve import app_command

ROOT = Path(__file__).resolve().parents[2]


def v2_server(module: str, log_dir: Path, extra: list[str], env: dict) -> tuple[Process, str]:
    """`python -m model|transformer` with the v2 model name `bukva`; returns it and its URL."""
    http, grpc = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    args = [sys.executable, "-m", module, "--model_name", "bukva", "--http_port", str(http)]
    args += ["--grpc_port", str(grpc), *extra]
    log = log_dir / f"{module}.log"
    return Process(module, args, f"{url}/v2/health/ready", env, log, ROOT), url


def streamlit_app(log_dir: Path, env: dict, name: str = "app") -> tuple[Process, str]:
    """The app exactly as `make app` runs it, headless, on a free port (no file watcher:
    nothing edits the code during a test)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [*app_command(port), "--server.fileWatcherType", "none"]
    log = log_dir / f"{name}.log"
    return Process(name, args, f"{url}/_stcore/health", env, log, ROOT), url
