"""Ctrl-C on `make serve` (and on what `make up` runs once a model exists: the same launcher
with the app and Prometheus) stops every process of the run within 5 s: no server, worker,
launcher or `make` left, not even as a zombie.

The run is started as a terminal starts a foreground job, in a process group of its own, and
SIGINT goes to that whole group, as the terminal sends it on Ctrl-C. The servers are the real
ones (`python -m model`, `python -m transformer`) on free ports, serving a random-weight model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launch.processes import descendants, exists, free_port, group_members, http_ok
from tests.support.signals import foreground_job_signals

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 5.0
START_TIMEOUT_S = 240.0  # torch + kserve + Streamlit imports on two busy cores


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from bukva.network import BukvaNet, save

    torch.manual_seed(0)
    return save(BukvaNet(), tmp_path_factory.mktemp("model") / "model")


def _wait_for(urls: list[str], make: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(http_ok(url) for url in urls):
        if make.poll() is not None:
            pytest.fail(f"make exited {make.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"not ready in {START_TIMEOUT_S}s: {urls}\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.mark.parametrize("extras", [[], ["--app", "--prometheus"]], ids=["serve", "up"])
def test_ctrl_c_stops_every_process_within_5_s(
    extras: list[str], model_dir: Path, tmp_path: Path
) -> None:
    if shutil.which("make") is None:
        pytest.skip("needs make")
    if "--prometheus" in extras and shutil.which("prometheus") is None:
        pytest.skip("apt-get install prometheus")
    http, app_port, mlflow_port = free_port(), free_port(), free_port()
    args = [
        f"--model_dir={model_dir}", f"--http_port={http}", f"--grpc_port={free_port()}",
        f"--predictor_http_port={free_port()}", f"--predictor_grpc_port={free_port()}",
        f"--mlflow_port={mlflow_port}", f"--app_port={app_port}",
        f"--prometheus_listen=127.0.0.1:{free_port()}", *extras,
    ]  # fmt: skip
    env = os.environ | {
        "BUKVA_HOME": str(tmp_path),  # run/ logs, Prometheus config, the MLflow UI's registry
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "BUKVA_METRICS_PORT": "0",
    }
    log = tmp_path / "make.log"
    with log.open("wb") as out:
        make = subprocess.Popen(
            ["make", "--no-print-directory", "-o", ".venv/.bukva-env", f"PY={sys.executable}",
             "serve", f"SERVE_ARGS={' '.join(args)}"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, like a terminal's foreground job
            preexec_fn=foreground_job_signals,
        )  # fmt: skip
    run: set[int] = set()
    groups: set[int] = set()
    try:
        urls = [f"http://127.0.0.1:{http}/v2/health/ready"]
        urls += [f"http://127.0.0.1:{app_port}/_stcore/health"] if "--app" in extras else []
        _wait_for(urls, make, log)
        run = {make.pid} | descendants(make.pid)
        groups = {os.getpgid(pid) for pid in run if exists(pid)}
        expected = 4 + 2 * ("--app" in extras)  # make, launcher, 2 servers, MLflow UI (+app,+prom)
        assert len(run) >= expected, f"only {len(run)} processes in the run"

        os.killpg(make.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        began = time.monotonic()
        make.wait(timeout=STOP_WITHIN_S)
        while time.monotonic() - began < STOP_WITHIN_S:
            left = {pid for pid in run if exists(pid)} | group_members(groups)
            if not left:
                break
            time.sleep(0.1)
        assert not left, f"still there {time.monotonic() - began:.1f}s after Ctrl-C: " + ", ".join(
            Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:80] for pid in left
        )
        assert make.returncode != 0  # interrupted, as make reports it
        assert not http_ok(urls[0])
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait()
        # A failed stop must not leave the run's servers (each in its own group) behind.
        for pid in ({pid for pid in run if exists(pid)} | group_members(groups)) - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
