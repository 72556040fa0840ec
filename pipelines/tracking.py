"""The one MLflow module: connect and check, the run every stage logs into, registration.

- `connect` points MLflow (tracking and registry) at `bukva.settings.Settings.tracking_uri`
  (MLFLOW_TRACKING_URI, else a SQLite file under mlruns/), after `check` has made sure the
  tracking server and, through it, its artifact store answer: a dead PostgreSQL, MLflow or S3
  endpoint fails in seconds with a message naming it, instead of after MLflow's own retries,
  and before anything is half-written. `setup` also selects (creates) the experiment.
- `stage_run` is the run a stage logs into: one run per training, resumed by `evaluate` and
  `register`, which find it by the sha256 of the weights it wrote (`training_run`): the model
  folder holds no run id, so the same training gives byte-identical files on every machine
  and dvc.lock's hashes reproduce.
- `register_verified` is the only safe way to create a registry version: it checks that the
  run's model files are in the artifact store first, and deletes the version again if
  anything after its creation fails, so the registry never holds a version without files.

Creating the databases and buckets behind `make services` is local-run tooling
(`launch/backends.py`), not this module's.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bukva import s3
from bukva.registry import (
    CHAMPION_ALIAS,
    REGISTERED_MODEL,
    WEIGHTS_TAG,
    RegistryUnavailable,
    is_server,
    version_by_alias,
    weights_digest,
)
from bukva.settings import Settings
from pipelines.common import StageError

EXPERIMENT = "bukva"
CHECK_TIMEOUT_S = 5.0


class TrackingUnavailable(StageError):
    """The tracking store, its database or its artifact store cannot be reached."""


def _http_get(url: str, timeout: float) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")


def check_server(uri: str, timeout: float = CHECK_TIMEOUT_S) -> None:
    """An http(s) tracking server must answer /health and list its artifact root.

    The artifact listing goes through the server to its `--artifacts-destination` (S3), so
    an S3 endpoint that is down shows up here, not at the end of training.
    """
    base = uri.rstrip("/")
    try:
        status, body = _http_get(f"{base}/health", timeout)
    except (urllib.error.URLError, OSError) as exc:
        raise TrackingUnavailable(
            f"MLflow tracking server at {base} is unreachable: {exc}"
        ) from exc
    if status != 200:
        raise TrackingUnavailable(f"MLflow tracking server at {base} is unhealthy: {status} {body}")
    prefix = f"MLflow at {base} cannot reach its artifact store"
    try:
        status, body = _http_get(f"{base}/api/2.0/mlflow-artifacts/artifacts?path=", timeout * 4)
    except (urllib.error.URLError, OSError) as exc:
        status, body = 0, f"no answer in {timeout * 4:.0f}s ({exc})"  # the server is retrying S3
    # 404/501: the server does not proxy artifacts (clients write to the store themselves).
    if status == 0 or (status >= 500 and status != 501):
        if s3.endpoint_url():  # the client knows the S3 endpoint too: name it precisely
            try:
                s3.check(s3.client())
            except s3.StorageUnavailable as exc:
                raise TrackingUnavailable(f"{prefix}: {exc}") from exc
        raise TrackingUnavailable(f"{prefix} (HTTP {status or 'timeout'}): {_error_message(body)}")


def _error_message(body: str) -> str:
    try:
        return str(json.loads(body).get("message", body))[:300]
    except (ValueError, AttributeError):
        text = re.sub(r"<[^>]+>", " ", body)  # the server's HTML error page
        return " ".join(text.split())[:300]


def check_database(uri: str, timeout: float = CHECK_TIMEOUT_S) -> None:
    """A SQLAlchemy backend URI: PostgreSQL must accept a connection; SQLite's folder exists."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme.startswith("sqlite"):
        path = uri.split(":///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return
    if parsed.scheme.startswith("postgresql"):
        import psycopg

        dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", uri)  # libpq: no driver name
        try:
            psycopg.connect(dsn, connect_timeout=max(1, int(timeout))).close()
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0]
            raise TrackingUnavailable(
                f"PostgreSQL at {_where(uri)} is unreachable: {reason}"
            ) from exc


def check(uri: str, timeout: float = CHECK_TIMEOUT_S) -> None:
    """Fail fast, naming the endpoint, unless the tracking store at `uri` is usable."""
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme in {"http", "https"}:
        check_server(uri, timeout)
    else:
        check_database(uri, timeout)


def _where(url: str) -> str:
    """host:port/database of a database URL, without user or password (for messages)."""
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.hostname}:{parsed.port or 5432}{parsed.path}"


def connect(settings: Settings | None = None, verify: bool = True) -> str:
    """Point MLflow's tracking and registry at the configured store; return its URI.

    Args:
        verify: `check` the store first (for the embedded SQLite store: create its folder).
    Raises:
        TrackingUnavailable: the server, database or artifact store is down (named).
    """
    import mlflow

    uri = (settings or Settings.from_env()).tracking_uri
    if verify:
        check(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # the registry lives in the tracking store
    return uri


def _sqlite_alias(path: Path, name: str, alias: str) -> bool | None:
    """Whether MLflow's SQLite store at `path` holds `name@alias`, read from its
    `registered_model_aliases` table without importing MLflow (~4 s); None when that table
    cannot be read (another schema, a locked or broken file): then ask MLflow's client."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            row = db.execute(
                "SELECT 1 FROM registered_model_aliases WHERE name = ? AND alias = ?",
                (name, alias),
            ).fetchone()
    except sqlite3.Error:
        return None
    return row is not None


def has_champion(settings: Settings | None = None) -> bool:
    """True when the registry at the configured tracking URI has `bukva-cnn@champion`.

    Light enough for `make up`'s first step (`launch.champion`) to ask in its own process,
    without torch: an MLflow server is asked over REST and the embedded SQLite store read
    directly (`_sqlite_alias`), neither importing MLflow; any other database, or a SQLite file
    that cannot be read that way, through MLflow's client. No embedded SQLite file yet means
    nothing was ever registered.

    Raises:
        TrackingUnavailable: the store cannot be asked (a server that does not answer or
            refuses, a database that cannot be opened: named).
    """
    uri = (settings or Settings.from_env()).tracking_uri
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_file():
            return False
        found = _sqlite_alias(path, REGISTERED_MODEL, CHAMPION_ALIAS)
        if found is not None:
            return found
    registry: Any = uri  # a server: asked over REST
    if not is_server(uri):
        from mlflow.tracking import MlflowClient

        connect(settings, verify=not uri.startswith("sqlite:"))  # a dead database: in seconds
        try:
            registry = MlflowClient()
        except Exception as exc:  # the store's engine or schema check failed
            raise TrackingUnavailable(f"cannot open the tracking store {uri}: {exc}") from None
    try:
        return version_by_alias(registry) is not None
    except RegistryUnavailable as exc:
        raise TrackingUnavailable(str(exc)) from None


def setup(
    experiment: str = EXPERIMENT, settings: Settings | None = None, verify: bool = True
) -> str:
    """`connect`, then select `experiment` (created if missing); return its id.

    The embedded store keeps artifacts next to its SQLite file (mlruns/artifacts).

    Raises:
        TrackingUnavailable: the store is down or refuses (names the URI).
    """
    import mlflow

    settings = settings or Settings.from_env()
    uri = connect(settings, verify)
    try:
        found = mlflow.get_experiment_by_name(experiment)
        if found is not None:
            experiment_id = found.experiment_id
        else:
            location = None
            if not settings.mlflow_tracking_uri:
                location = (settings.home / "mlruns" / "artifacts").as_uri()
            experiment_id = mlflow.create_experiment(experiment, artifact_location=location)
        mlflow.set_experiment(experiment_id=experiment_id)
    except Exception as exc:
        raise TrackingUnavailable(f"MLflow tracking store {uri} is unreachable: {exc}") from None
    return experiment_id


def git_commit() -> str:
    """The checkout's commit (with -dirty when it has changes), or 'unknown'."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flatten(value, f"{name}.")
        elif isinstance(value, int | float | str | bool):
            out[name] = value
    return out


@dataclass
class RunLog:
    """What a stage may log into its run."""

    run_id: str

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        """Every finite number in `metrics` (nested dicts flattened to `a.b`)."""
        import mlflow

        numbers = {k: float(v) for k, v in _flatten(metrics).items() if isinstance(v, int | float)}
        mlflow.log_metrics({k: v for k, v in numbers.items() if v == v}, step=step)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifacts(str(folder), artifact_path)

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path)

    def log_dict(self, value: dict, artifact_file: str) -> None:
        import mlflow

        mlflow.log_dict(value, artifact_file)

    def set_tags(self, tags: dict[str, str]) -> None:
        import mlflow

        mlflow.set_tags(tags)


@contextmanager
def stage_run(
    stage: str, params: dict | None = None, run_id: str | None = None, verify: bool = True
) -> Iterator[RunLog]:
    """Start (or, with run_id, resume) the MLflow run a stage logs into.

    Args:
        run_id: the run to resume (the training run); one this store lacks starts a new run.
        verify: check the store first; False where the caller has just `connect`ed.
    Raises:
        TrackingUnavailable: the tracking store cannot be reached (names the URI).
    """
    import mlflow

    experiment_id = setup(EXPERIMENT, verify=verify)
    if run_id is not None:
        try:
            mlflow.get_run(run_id)
        except Exception:
            uri = mlflow.get_tracking_uri()
            print(f"{stage}: run {run_id} is not in {uri}; logging into a new run", flush=True)
            run_id = None
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=None if run_id else stage,
    ):
        active = mlflow.active_run()
        if run_id is None:
            mlflow.set_tags({"bukva.stage": stage, "git_commit": git_commit()})
        if params:
            mlflow.log_params(_flatten(params))
        yield RunLog(active.info.run_id)


def tag_weights(run: RunLog, model_dir: str | Path) -> None:
    """Mark `run` as the one that wrote the weights in `model_dir` (see `training_run`)."""
    run.set_tags({WEIGHTS_TAG: weights_digest(model_dir)})


def training_run(weights_sha: str, client=None) -> str | None:
    """The run that trained the weights whose sha256 is `weights_sha` (`weights_digest` of
    the model folder; the run's `WEIGHTS_TAG`), the latest when the same weights were trained
    twice; None when this store has none. Needs `connect` first."""
    from mlflow.tracking import MlflowClient

    client = client or MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.{WEIGHTS_TAG} = '{weights_sha}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0].info.run_id if runs else None


def artifact_files(run_id: str, path: str = "") -> set[str]:
    """Paths of every file logged under `path` in run `run_id` (recursively)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    found: set[str] = set()
    pending = [path]
    while pending:
        for info in client.list_artifacts(run_id, pending.pop() or None):
            (pending.append(info.path) if info.is_dir else found.add(info.path))
    return found


def register_verified(
    run_id: str,
    artifact_path: str,
    name: str,
    required: Iterable[str],
    tags: Mapping[str, Any] | None = None,
    alias: str | None = None,
) -> Any:
    """Register `runs:/<run_id>/<artifact_path>` as a version of `name`, all or nothing.

    Every file in `required` (relative to `artifact_path`) must already be in the artifact
    store; then the version is created, tagged and, if asked, given `alias`. If any step
    after creation fails, the version is deleted again before the error propagates.

    Returns:
        The ModelVersion.
    Raises:
        FileNotFoundError: a required file is missing from the run's artifacts.
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    present = artifact_files(run_id, artifact_path)
    missing = [f for f in required if f"{artifact_path}/{f}".strip("/") not in present]
    if missing:
        raise FileNotFoundError(
            f"run {run_id} has no {', '.join(missing)} under {artifact_path!r}; not registering"
        )
    try:
        client.get_registered_model(name)
    except MlflowException:  # RESOURCE_DOES_NOT_EXIST
        client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{run_id}/{artifact_path}", run_id)
    try:
        for key, value in (tags or {}).items():
            client.set_model_version_tag(name, version.version, key, str(value))
        if alias:
            client.set_registered_model_alias(name, alias, version.version)
    except BaseException:
        client.delete_model_version(name, version.version)
        raise
    return version
