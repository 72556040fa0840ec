"""Real services for the browser tests, each on a free 127.0.0.1 port, stopped afterwards.

- `Process`: a subprocess started the way `make` and the charts start it, with its log in a
  file (shown when it fails to start) and a readiness URL to wait for.
The S3 endpoint (moto standing in for MinIO) is `tests.support.s3.MotoS3`: it can be stopped
and started again on the same port; moto keeps its buckets in this process meanwhile, as MinIO
keeps them on its volume.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.s3 import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180  # two busy cores: importing torch + kserve can take a while


class Process:
    """One service subprocess: `args` run with this Python, ready when `ready_url` says 200."""

    def __init__(self, name: str, args: list[str], ready_url: str, log_dir: Path, env: dict):
        self.name, self.args, self.ready_url, self.env = name, args, ready_url, env
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Process:
        env = os.environ | {"PYTHONUNBUFFERED": "1"} | self.env
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *self.args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S}s:\n{self.tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def v2_server(module: str, log_dir: Path, extra: list[str], env: dict) -> tuple[Process, str]:
    """`python -m model|transformer` with the v2 model name `bukva`; returns it and its URL."""
    http, grpc = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    args = ["-m", module, "--model_name", "bukva", "--http_port", str(http)]
    args += ["--grpc_port", str(grpc), *extra]
    return Process(module, args, f"{url}/v2/health/ready", log_dir, env), url


def streamlit_app(log_dir: Path, env: dict, name: str = "app") -> tuple[Process, str]:
    """The app exactly as `make app` runs it, headless, on a free port."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["-m", "streamlit", "run", "frontend/app.py", "--server.address", "127.0.0.1"]
    args += ["--server.port", str(port), "--server.headless", "true"]
    args += ["--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    args += ["--client.toolbarMode", "minimal"]
    return Process(name, args, f"{url}/_stcore/health", log_dir, env), url
