"""`make serve` and `make up`: the predictor, the transformer and their companions as local
processes, in the foreground, until Ctrl-C.

    python -m launch.serve                       # predictor + transformer (+ MLflow UI)
    python -m launch.serve --app --prometheus    # what `make up` runs

The servers run exactly as `make bench`, `make parity` and the tests start them (`running`),
with the log level and per-request trace of `bukva.settings.Settings` (default: WARNING, no
trace line per request). Ctrl-C, SIGTERM or SIGHUP stops every process this started within
`STOP_GRACE_S` (see `launch.processes`); the launcher then ends by the same signal.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bukva.contract import MODEL_NAME
from bukva.registry import CHAMPION_URI
from bukva.settings import Settings, SettingsError
from launch.processes import Interrupted, Process, exit_like, interruptible, stop_all

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Ports:
    transformer_http: int = 8080
    transformer_grpc: int = 8081
    predictor_http: int = 8090
    predictor_grpc: int = 8091


# The runtime settings of both server images (the `servers` stage of the root Dockerfile):
# numpy's OpenBLAS on one thread (its threads spin on a busy machine and tripled the CPU of the
# transformer's one small matrix product, `bukva.preprocess.to_ink`), and glibc malloc keeping
# freed memory (each canvas's ~1 MB float temporaries were mmap-ed and unmapped per request:
# ~590 page faults, a third of the transformer's CPU).
SERVER_RUNTIME_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": "16777216",
    "MALLOC_TRIM_THRESHOLD_": "67108864",
}


def server_env(settings: Settings) -> dict[str, str]:
    """Environment of both KServe servers: KServe reads KSERVE_LOGLEVEL itself; plus
    `SERVER_RUNTIME_ENV`, as in the server images."""
    return {"KSERVE_LOGLEVEL": settings.kserve_loglevel.upper(), **SERVER_RUNTIME_ENV}


LOOPBACK = "127.0.0.1"  # where local runs listen (`--bind`): what `make up` prints


def server_flags(settings: Settings, bind: str = LOOPBACK) -> list[str]:
    """Flags both KServe servers get locally: the per-request trace line from the settings and
    the address to listen on (the images' default is all interfaces, as a pod needs)."""
    return ["--enable_latency_logging", str(settings.bukva_request_trace).lower(), "--bind", bind]


def shown_host(address: str) -> str:
    """The address to print for a server listening on `address` (loopback for 0.0.0.0/::)."""
    return LOOPBACK if address in ("", "0.0.0.0", "::") else address


def predictor_command(ports: Ports, model_args: Sequence[str], extra: Sequence[str]) -> list[str]:
    return [
        sys.executable, "-m", "model", "--model_name", MODEL_NAME,
        "--http_port", str(ports.predictor_http), "--grpc_port", str(ports.predictor_grpc),
        *model_args, *extra,
    ]  # fmt: skip


def transformer_command(
    ports: Ports, protocol: str, extra: Sequence[str], host: str = LOOPBACK
) -> list[str]:
    port = ports.predictor_grpc if protocol == "grpc-v2" else ports.predictor_http
    return [
        sys.executable, "-m", "transformer", "--model_name", MODEL_NAME,
        "--predictor_host", f"{host}:{port}", "--predictor_protocol", protocol,
        "--http_port", str(ports.transformer_http), "--grpc_port", str(ports.transformer_grpc),
        *extra,
    ]  # fmt: skip


def servers(
    ports: Ports,
    model_args: Sequence[str],
    protocol: str = "grpc-v2",
    predictor_extra: Sequence[str] = (),
    transformer_extra: Sequence[str] = (),
    log_dir: Path | None = None,
    settings: Settings | None = None,
    bind: str = LOOPBACK,
) -> tuple[Process, Process]:
    """The predictor and the transformer as `Process`es (not started), listening on `bind`;
    logs in `log_dir`, or on this terminal when None."""
    settings = settings or Settings.from_env()
    env, flags = server_env(settings), server_flags(settings, bind)
    host = shown_host(bind)

    def log(name: str) -> Path | None:
        return log_dir / f"{name}.log" if log_dir else None

    predictor = Process(
        "predictor",
        predictor_command(ports, model_args, [*flags, *predictor_extra]),
        f"http://{host}:{ports.predictor_http}/v2/health/ready",
        env,
        log("predictor"),
        ROOT,
    )
    transformer = Process(
        "transformer",
        transformer_command(ports, protocol, [*flags, *transformer_extra], host),
        f"http://{host}:{ports.transformer_http}/v2/health/ready",
        env,
        log("transformer"),
        ROOT,
    )
    return predictor, transformer


@dataclass(frozen=True)
class Serving:
    """What `running` started: the ports and the two process ids."""

    ports: Ports
    predictor_pid: int
    transformer_pid: int


@contextmanager
def running(
    ports: Ports,
    model_args: Sequence[str],
    protocol: str = "grpc-v2",
    predictor_extra: Sequence[str] = (),
    transformer_extra: Sequence[str] = (),
    quiet: bool = False,
    log_dir: Path | None = None,
) -> Iterator[Serving]:
    """Predictor and transformer, both ready, for the duration of the block; `quiet` drops
    their output unless `log_dir` keeps it."""
    started: list[Process] = []
    try:
        for process in servers(
            ports, model_args, protocol, predictor_extra, transformer_extra, log_dir
        ):
            if quiet and log_dir is None:
                process.log = Path(os.devnull)
            started.append(process)
            process.start()
        yield Serving(ports, started[0].pid, started[1].pid)
    finally:
        stop_all(started)


def mlflow_ui(port: int, settings: Settings) -> Process | None:
    """With the embedded registry (SQLite), an MLflow UI on `port` to browse it; else None.

    MLflow 3's job runner (seven idle huey consumers) is off: nothing here submits jobs.
    """
    uri = settings.tracking_uri
    if not port or not uri.startswith("sqlite:///"):
        return None
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return Process("mlflow", cmd, None, env, settings.home / "run" / "mlflow.log", ROOT)


def app_command(port: int, address: str = "127.0.0.1") -> list[str]:
    """The Streamlit app, headless: `make app`, `make up` and the browser tests run this."""
    return [
        sys.executable, "-m", "streamlit", "run", str(ROOT / "frontend" / "app.py"),
        "--server.address", address, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip


def app_page(address: str, port: int) -> str:
    """The URL a person opens: the address the app listens on (loopback for 0.0.0.0/::)."""
    return f"http://{shown_host(address)}:{port}/"


def app(
    port: int, log: Path | None, address: str = "127.0.0.1", env: dict[str, str] | None = None
) -> Process:
    """The drawing app as a `Process`, ready when Streamlit's health check answers. Its own
    /metrics endpoint listens where the app does (BUKVA_METRICS_ADDRESS; the image's default
    is all interfaces, for Prometheus in the cluster)."""
    url = f"http://{shown_host(address)}:{port}/_stcore/health"
    env = {"BUKVA_METRICS_ADDRESS": address or "0.0.0.0", **(env or {})}
    return Process("app", app_command(port, address), url, env, log, ROOT)


HOWTO = """
bukva is serving (Ctrl-C stops everything):
  transformer  http://{host}:{transformer_http}  grpc {host}:{transformer_grpc}
  predictor    http://{host}:{predictor_http}  grpc {host}:{predictor_grpc}

Recognise a PNG (a glyph the repository ships; any PNG or JPEG will do):
  IMG=$(base64 < '{example}' | tr -d '\\n')
  curl -s http://{host}:{transformer_http}/v2/models/bukva/infer \\
    -H 'content-type: application/json' \\
    -d '{{"inputs":[{{"name":"image","datatype":"BYTES","shape":[1],"data":["'$IMG'"]}}]}}'
Metadata, health, metrics:
  curl http://{host}:{transformer_http}/v2/models/bukva
  curl http://{host}:{transformer_http}/v2/health/ready
  curl http://{host}:{transformer_http}/metrics
"""
# A scanned Rukopys glyph (ж) kept with the tests' fixtures: the example needs no data set.
EXAMPLE_PNG = ROOT / "tests" / "fixtures" / "rukopys_zh-1.png"
APP_PAGE = """
  Open the drawing app: {url}
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m launch.serve", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model_dir", help="serve this folder instead of the registry champion")
    parser.add_argument("--model_uri", help=f"or this URI (default: {CHAMPION_URI})")
    parser.add_argument(
        "--model_version",
        help="the registry version that folder or URI holds, for the predictor to report "
        "(default: the version a models:/ URI names or its alias points at at start-up, "
        "else the weights' sha256)",
    )
    parser.add_argument(
        "--predictor_protocol",
        default="grpc-v2",
        choices=["v2", "grpc-v2"],
        help="transformer -> predictor hop; gRPC halves its cost locally (docs/serving.md)",
    )
    default = Ports()
    parser.add_argument(
        "--bind",
        default=LOOPBACK,
        help="address the predictor and transformer listen on (0.0.0.0: every interface)",
    )
    parser.add_argument("--http_port", type=int, default=default.transformer_http)
    parser.add_argument("--grpc_port", type=int, default=default.transformer_grpc)
    parser.add_argument("--predictor_http_port", type=int, default=default.predictor_http)
    parser.add_argument("--predictor_grpc_port", type=int, default=default.predictor_grpc)
    parser.add_argument(
        "--mlflow_port",
        type=int,
        default=5000,
        help="MLflow UI when the registry is local (0: none)",
    )
    parser.add_argument("--app", action="store_true", help="also the drawing app (make up)")
    parser.add_argument("--app_address", default="127.0.0.1")
    parser.add_argument("--app_port", type=int, default=8501)
    parser.add_argument(
        "--no_servers", action="store_true", help="only the companions asked for (make app)"
    )
    parser.add_argument("--prometheus", action="store_true", help="also Prometheus (make up)")
    parser.add_argument("--prometheus_listen", default="127.0.0.1:9090")
    return parser


def _companions(args: argparse.Namespace, ports: Ports, settings: Settings) -> list[Process]:
    """MLflow UI, app and Prometheus as asked: they start first and boot while the servers do."""
    run = settings.home / "run"
    ui = mlflow_ui(args.mlflow_port, settings)
    found = [ui]
    if args.app:
        # The app reads the registry over HTTP (its model page): point it at the UI's server.
        env = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{args.mlflow_port}"} if ui else {}
        # ... and calls the transformer and Prometheus this launcher starts, on the ports given.
        if not args.no_servers:
            host = shown_host(args.bind)
            env["BUKVA_INFERENCE_URL"] = f"http://{host}:{ports.transformer_http}"
        if args.prometheus:
            env["BUKVA_PROMETHEUS_URL"] = f"http://{args.prometheus_listen}"
        log = None if args.no_servers else run / "app.log"
        found.append(app(args.app_port, log, args.app_address, env or None))
    if args.prometheus:
        from launch.prometheus import prometheus

        try:
            found.append(
                prometheus(settings.home, ports, args.prometheus_listen, run / "prometheus")
            )
        except RuntimeError as exc:  # not installed: serve without it, saying so
            print(f"serve: no Prometheus: {exc}", file=sys.stderr)
    return [p for p in found if p is not None]


def model_args(args: argparse.Namespace) -> list[str]:
    """The predictor's model flags: what to serve and, when said, the version it is."""
    found = ["--model_dir", args.model_dir] if args.model_dir else []
    found += ["--model_uri", args.model_uri] if args.model_uri else []
    return found + (["--model_version", args.model_version] if args.model_version else [])


def serve(args: argparse.Namespace) -> None:
    """Start everything, print where it is, and block until a process dies or a signal."""
    settings = Settings.from_env()
    ports = Ports(
        args.http_port, args.grpc_port, args.predictor_http_port, args.predictor_grpc_port
    )
    started: list[Process] = []
    try:
        for process in _companions(args, ports, settings):
            started.append(process)
            process.start(wait=False)
            print(f"serve: {process.name} starting (log: {process.log or 'here'})", flush=True)
        for process in (
            []
            if args.no_servers
            else servers(
                ports, model_args(args), args.predictor_protocol, settings=settings, bind=args.bind
            )
        ):
            started.append(process)
            process.start()
        for process in started:
            process.wait_ready()
            if process.ready_url and process.name != "app":
                print(f"serve: {process.name} ready: {process.ready_url}", flush=True)
        if not args.no_servers:
            host = shown_host(args.bind)
            print(HOWTO.format(example=EXAMPLE_PNG, host=host, **vars(ports)), flush=True)
        if args.app:  # the page to open, not the health URL it was checked by
            print(APP_PAGE.format(url=app_page(args.app_address, args.app_port)), flush=True)
        watched = list(started)
        while True:
            time.sleep(0.3)
            for dead in [p for p in watched if not p.running]:
                if dead.name != "mlflow":
                    raise RuntimeError(f"{dead.name} exited with status {dead.proc.returncode}")
                # The UI is a convenience (its port may be taken): serving goes on without it.
                print(f"serve: the MLflow UI exited; see {dead.log}", file=sys.stderr, flush=True)
                watched.remove(dead)
    finally:
        stop_all(started)


def main(argv: list[str] | None = None) -> int:
    """CLI: serve until a signal (then end by it, like any interrupted command) or a failure."""
    args = build_parser().parse_args(argv)
    interrupted = None
    with interruptible():
        try:
            serve(args)
        except Interrupted as stop:
            interrupted = stop.signum
        except (RuntimeError, SettingsError) as exc:
            print(f"serve: {exc}", file=sys.stderr)
            return 1
    print("serve: stopped", flush=True)
    if interrupted is not None:
        exit_like(interrupted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
