"""Start the predictor and transformer as local processes (for `make serve` and the benchmarks).

`python -m bench.servers` runs both in the foreground, prints how to call them, and stops
both cleanly on Ctrl-C (SIGINT/SIGTERM to each, SIGKILL after a grace period).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

READY_TIMEOUT_S = 180


@dataclass(frozen=True)
class Ports:
    transformer_http: int = 8080
    transformer_grpc: int = 8081
    predictor_http: int = 8090
    predictor_grpc: int = 8091


def predictor_command(ports: Ports, model_args: list[str], extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "model", "--model_name", "bukva",
        "--http_port", str(ports.predictor_http), "--grpc_port", str(ports.predictor_grpc),
        *model_args, *extra,
    ]  # fmt: skip


def transformer_command(ports: Ports, protocol: str, extra: list[str]) -> list[str]:
    port = ports.predictor_grpc if protocol == "grpc-v2" else ports.predictor_http
    return [
        sys.executable, "-m", "transformer", "--model_name", "bukva",
        "--predictor_host", f"127.0.0.1:{port}", "--predictor_protocol", protocol,
        "--http_port", str(ports.transformer_http), "--grpc_port", str(ports.transformer_grpc),
        *extra,
    ]  # fmt: skip


def wait_ready(url: str, proc: subprocess.Popen, name: str) -> None:
    """Poll `url` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{name} exited with status {proc.returncode} (see its output above)"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{name} was not ready at {url} after {READY_TIMEOUT_S}s")


def stop(procs: list[subprocess.Popen], grace_s: float = 10.0) -> None:
    """SIGTERM every process, then SIGKILL whatever is still alive after `grace_s`."""
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class Serving:
    """What `running` started: the ports and the two process ids."""

    ports: Ports
    predictor_pid: int
    transformer_pid: int


@contextmanager
def running(
    ports: Ports,
    model_args: list[str],
    protocol: str = "grpc-v2",
    predictor_extra: list[str] = (),
    transformer_extra: list[str] = (),
    quiet: bool = False,
) -> Iterator[Serving]:
    """Predictor and transformer, both ready, for the duration of the block."""
    out = subprocess.DEVNULL if quiet else None
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    procs: list[subprocess.Popen] = []
    try:
        cmd = predictor_command(ports, model_args, list(predictor_extra))
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=out, env=env))
        wait_ready(
            f"http://127.0.0.1:{ports.predictor_http}/v2/health/ready", procs[0], "predictor"
        )
        cmd = transformer_command(ports, protocol, list(transformer_extra))
        procs.append(subprocess.Popen(cmd, stdout=out, stderr=out, env=env))
        url = f"http://127.0.0.1:{ports.transformer_http}/v2/health/ready"
        wait_ready(url, procs[1], "transformer")
        yield Serving(ports, procs[0].pid, procs[1].pid)
    finally:
        stop(procs)


HOWTO = """
bukva is serving (Ctrl-C stops both):
  transformer  http://127.0.0.1:{transformer_http}  grpc 127.0.0.1:{transformer_grpc}
  predictor    http://127.0.0.1:{predictor_http}  grpc 127.0.0.1:{predictor_grpc}

Recognise a PNG:
  IMG=$(base64 -w0 ../shared/data/rukopys/glyphs/a-0.png)
  curl -s http://127.0.0.1:{transformer_http}/v2/models/bukva/infer \\
    -H 'content-type: application/json' \\
    -d '{{"inputs":[{{"name":"image","datatype":"BYTES","shape":[1],"data":["'$IMG'"]}}]}}'
Metadata, health, metrics:
  curl http://127.0.0.1:{transformer_http}/v2/models/bukva
  curl http://127.0.0.1:{transformer_http}/v2/health/ready
  curl http://127.0.0.1:{transformer_http}/metrics
"""


def start_mlflow_ui(port: int) -> subprocess.Popen | None:
    """With the embedded registry (SQLite), an MLflow UI on `port` to browse it; else None."""
    from bukva.settings import Settings

    uri = Settings.from_env().tracking_uri
    if not port or not uri.startswith("sqlite:///"):
        return None
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    print(f"serve: MLflow UI for the embedded registry on http://127.0.0.1:{port}", flush=True)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run predictor + transformer until Ctrl-C.")
    parser.add_argument("--model_dir", help="serve this folder instead of the registry champion")
    parser.add_argument("--model_uri", help="or this URI (default: models:/bukva-cnn@champion)")
    parser.add_argument(
        "--predictor_protocol",
        default="grpc-v2",
        choices=["v2", "grpc-v2"],
        help="transformer -> predictor hop; gRPC halves its cost locally (docs/serving.md)",
    )
    parser.add_argument(
        "--mlflow_port",
        type=int,
        default=5000,
        help="MLflow UI port when the registry is local (0: none)",
    )
    args = parser.parse_args()
    model_args = ["--model_dir", args.model_dir] if args.model_dir else []
    model_args += ["--model_uri", args.model_uri] if args.model_uri else []
    ports = Ports()
    stopping = False

    def on_signal(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    ui = start_mlflow_ui(args.mlflow_port)
    try:
        with running(ports, model_args, args.predictor_protocol):
            print(HOWTO.format(**vars(ports)), flush=True)
            while not stopping:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        print(f"serve: {exc}", file=sys.stderr)
        return 1
    finally:
        stop([ui] if ui else [])
    print("serve: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
