"""Local platform services: an MLflow tracking server on PostgreSQL + S3, and an S3 endpoint.

    python -m launch.services up      # start, then: source run/services/env
    python -m launch.services status
    python -m launch.services down [--purge]

`up` checks PostgreSQL (creates the `bukva_mlflow` and `bukva_optuna` databases if missing),
starts an S3 endpoint unless one is given (moto in server mode on loopback: no MinIO can be
installed on these machines; the cluster runs MinIO), creates the buckets, starts
`mlflow server` with its artifacts proxied to the S3 bucket, and writes the client
environment to `run/services/env`. Training, registration, tuning and serving then reach
the services through those variables only. Each process runs in its own session; its pid
file in `run/services/` is how `down` finds it, so nothing else is ever signalled. MLflow 3's
server job runner is off (MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false): nothing submits jobs, and
its idle consumers would cost a third of a core.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bukva.settings import Settings, SettingsError
from launch import backends
from launch.processes import START_TIMEOUT_S, Process, alive, stop_pid

MLFLOW_DB = "bukva_mlflow"
OPTUNA_DB = "bukva_optuna"
ARTIFACTS_BUCKET = "bukva-mlflow"
DVC_BUCKET = "bukva-dvc"
FEEDBACK_BUCKET = "bukva-feedback"
DVC_REMOTE = "s3"  # the name `make dvc-remote-s3` gives the bucket in .dvc/config.local
DVC_REMOTE_URL = f"s3://{DVC_BUCKET}/dvc"
# moto accepts any credentials; these are placeholders for loopback only, never real keys.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bukva-local", "AWS_SECRET_ACCESS_KEY": "bukva-local"}
STOP_TIMEOUT_S = 20.0


class ServiceError(RuntimeError):
    """A service cannot start or be reached; the message names the endpoint."""


@dataclass
class Service:
    """A process this module started: name, pid, URL, and where its output goes."""

    name: str
    pid: int
    url: str
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def pid_file(self, run_dir: Path) -> Path:
        return run_dir / f"{self.name}.pid"


def _start(name: str, cmd: list[str], url: str, ready: str, run_dir: Path, env: dict) -> Service:
    """Spawn `cmd` in its own process group, record its pid file, wait for `url + ready`."""
    process = Process(name, cmd, url + ready, env, run_dir / f"{name}.log")
    process.start(wait=False)
    service = Service(name, process.pid, url, process.log, process.proc)
    run_dir.mkdir(parents=True, exist_ok=True)
    info = {"pid": process.pid, "url": url, "cmd": cmd}
    service.pid_file(run_dir).write_text(json.dumps(info) + "\n")
    try:
        process.wait_ready(START_TIMEOUT_S)
    except RuntimeError as exc:
        stop(service, run_dir)
        raise ServiceError(f"{name} did not answer at {url}: {exc}") from exc
    return service


def start_s3(host: str, port: int, run_dir: Path) -> Service:
    """Start moto's S3 API in server mode on host:port (objects live in memory)."""
    cmd = [str(Path(sys.executable).with_name("moto_server")), "-H", host, "-p", str(port)]
    return _start("s3", cmd, f"http://{host}:{port}", "/moto-api/", run_dir, {})


def start_mlflow(
    backend_uri: str,
    artifacts_destination: str,
    host: str,
    port: int,
    run_dir: Path,
    s3_env: dict[str, str],
    workers: int = 1,
) -> Service:
    """Start `mlflow server` on PostgreSQL with artifacts proxied to `artifacts_destination`.

    Clients log artifacts through the server (`mlflow-artifacts:` URIs), so only the server
    needs the S3 endpoint and credentials, passed in `s3_env`.
    """
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        backend_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    # botocore's default retries turn a dead S3 into minutes-long requests; 3 tries suffice.
    env = {"AWS_MAX_ATTEMPTS": "3", "AWS_RETRY_MODE": "standard"} | s3_env
    env |= {"MLFLOW_TRACKING_URI": None, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return _start("mlflow", cmd, f"http://{host}:{port}", "/health", run_dir, env)


def stop(service: Service, run_dir: Path, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM the service's process group, SIGKILL after `timeout`; remove its pid file."""
    stop_pid(service.pid, timeout)
    if service.process is not None:
        service.process.wait(timeout=5)
    service.pid_file(run_dir).unlink(missing_ok=True)


def running(run_dir: Path) -> dict[str, dict]:
    """The services whose pid files exist and whose processes are alive."""
    found = {}
    for pid_file in sorted(run_dir.glob("*.pid")):
        info = json.loads(pid_file.read_text())
        if alive(int(info["pid"])):
            found[pid_file.stem] = info
    return found


def _credentials(settings: Settings) -> dict[str, str]:
    """The S3 keys from the settings, else the loopback placeholders moto accepts."""
    return {
        "AWS_ACCESS_KEY_ID": settings.aws_access_key_id or LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": settings.aws_secret_access_key
        or LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    }


def client_env(mlflow_url: str, s3_endpoint: str, optuna_storage: str) -> dict[str, str]:
    """The variables that point every component at these services."""
    credentials = _credentials(Settings.from_env())
    return {
        "MLFLOW_TRACKING_URI": mlflow_url,
        "MLFLOW_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ENDPOINT_URL": s3_endpoint,
        **credentials,
        "BUKVA_OPTUNA_STORAGE": optuna_storage,
        "BUKVA_FEEDBACK_URI": f"s3://{FEEDBACK_BUCKET}/feedback",
    }


def configure_dvc_remote(repo: Path, url: str, endpoint: str, name: str = DVC_REMOTE) -> None:
    """Make `url` (s3://bucket/prefix at `endpoint`) the default DVC remote of `repo`.

    Written with `--local` into `.dvc/config.local`, which git ignores: the endpoint is
    machine-specific and credentials stay in the environment (AWS_ACCESS_KEY_ID, ...), never
    in a committed file.
    """
    dvc = str(Path(sys.executable).with_name("dvc"))
    for cmd in (
        [dvc, "remote", "add", "--local", "--force", "--default", name, url],
        [dvc, "remote", "modify", "--local", name, "endpointurl", endpoint],
    ):
        done = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise ServiceError(f"{' '.join(cmd[1:4])} failed in {repo}: {done.stderr.strip()}")


def up(args: argparse.Namespace) -> dict[str, str]:
    """Start the S3 endpoint (unless given) and MLflow; write and return the client env."""
    run_dir = Path(args.run_dir)
    already = running(run_dir)
    if already:
        names = ", ".join(f"{k} ({v['url']})" for k, v in already.items())
        raise ServiceError(f"already running: {names}; `make services-down` first")
    backends.ensure_database(args.postgres_url, args.mlflow_db)
    backends.ensure_database(args.postgres_url, args.optuna_db)
    started: list[Service] = []
    try:
        endpoint = args.s3_endpoint
        if not endpoint:
            started.append(start_s3(args.host, args.s3_port, run_dir))
            endpoint = started[-1].url
        s3_env = {"MLFLOW_S3_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL": endpoint}
        s3_env |= _credentials(Settings.from_env())
        backends.ensure_buckets([ARTIFACTS_BUCKET, DVC_BUCKET, FEEDBACK_BUCKET], s3_env)
        backend = backends.sqlalchemy_url(args.postgres_url, args.mlflow_db)
        destination = f"s3://{ARTIFACTS_BUCKET}/artifacts"
        started.append(
            start_mlflow(backend, destination, args.host, args.mlflow_port, run_dir, s3_env)
        )
    except BaseException:
        for service in reversed(started):
            stop(service, run_dir)
        raise
    optuna_url = backends.sqlalchemy_url(args.postgres_url, args.optuna_db)
    env = client_env(started[-1].url, endpoint, optuna_url)
    env_file = run_dir / "env"
    env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o600)  # it holds the S3 keys
    return env


def down(args: argparse.Namespace) -> list[str]:
    """Stop every service with a pid file; `--purge` also drops the MLflow database.

    A DVC remote that `dvc-remote` pointed at this S3 endpoint is removed from
    `.dvc/config.local` too (its bucket is gone), so DVC falls back to the committed remote.
    """
    run_dir = Path(args.run_dir)
    endpoint = _read_env(run_dir).get("AWS_ENDPOINT_URL") if (run_dir / "env").is_file() else None
    stopped = []
    for pid_file in sorted(run_dir.glob("*.pid")):
        info = json.loads(pid_file.read_text())
        stop_pid(int(info["pid"]), STOP_TIMEOUT_S)
        pid_file.unlink(missing_ok=True)
        stopped.append(pid_file.stem)
    (run_dir / "env").unlink(missing_ok=True)
    local_config = Path(".dvc", "config.local")
    if endpoint and local_config.is_file() and endpoint in local_config.read_text():
        dvc = str(Path(sys.executable).with_name("dvc"))
        subprocess.run([dvc, "remote", "remove", "--local", DVC_REMOTE], capture_output=True)
    if getattr(args, "purge", False):
        backends.drop_database(args.postgres_url, args.mlflow_db)
    return stopped


def _read_env(run_dir: Path) -> dict[str, str]:
    """The client environment `up` wrote; ServiceError when the services are not up."""
    path = run_dir / "env"
    if not path.is_file():
        raise ServiceError(f"no {path}: run `make services` first")
    lines = path.read_text().splitlines()
    return dict(line.removeprefix("export ").split("=", 1) for line in lines if "=" in line)


def build_parser() -> argparse.ArgumentParser:
    """The CLI; tests build `up`/`down` arguments with it."""
    settings = Settings.from_env()
    parser = argparse.ArgumentParser(prog="python -m launch.services", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "dvc-remote"])
    parser.add_argument("--run-dir", default="run/services", help="pid files, logs, env file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--mlflow-port", type=int, default=5000)
    parser.add_argument("--s3-port", type=int, default=9000)
    parser.add_argument(
        "--postgres-url",
        default=settings.bukva_postgres_url,
        help="server URL without a database (env BUKVA_POSTGRES_URL)",
    )
    parser.add_argument(
        "--s3-endpoint",
        default=settings.bukva_s3_service_endpoint,
        help="use this S3 endpoint (e.g. MinIO) instead of starting moto "
        "(env BUKVA_S3_SERVICE_ENDPOINT)",
    )
    parser.add_argument("--mlflow-db", default=MLFLOW_DB, help="MLflow's PostgreSQL database")
    parser.add_argument("--optuna-db", default=OPTUNA_DB, help="Optuna's PostgreSQL database")
    parser.add_argument("--purge", action="store_true", help="down: drop the MLflow database too")
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; prints a one-line error (naming the endpoint) instead of a trace."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "up":
            env = up(args)
            print(f"MLflow {env['MLFLOW_TRACKING_URI']}  S3 {env['AWS_ENDPOINT_URL']}")
            print(f"point commands at them:  source {Path(args.run_dir) / 'env'}")
        elif args.command == "dvc-remote":
            env = _read_env(Path(args.run_dir))
            url, endpoint = DVC_REMOTE_URL, env["AWS_ENDPOINT_URL"]
            configure_dvc_remote(Path.cwd(), url, endpoint)
            print(
                f"DVC remote {DVC_REMOTE!r} = {url} at {endpoint} (default, in .dvc/config.local)"
            )
        elif args.command == "down":
            stopped = down(args)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
            if "s3" in stopped and not args.purge:
                print("moto kept its objects in memory: they are gone; PURGE=1 drops the runs too")
        else:
            found = running(Path(args.run_dir))
            for name, info in found.items():
                print(f"{name}: pid {info['pid']} {info['url']}")
            if not found:
                print("no services running")
    except (ServiceError, backends.BackendUnavailable, SettingsError) as exc:
        print(f"services: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
