"""MLflow setup shared by the stages, tuning and registration.

The tracking URI comes from `bukva.settings.Settings` (MLFLOW_TRACKING_URI, else a SQLite
file under mlruns/). Before a stage spends minutes training, `setup` checks that the
tracking server and, through it, its artifact store answer, so a dead PostgreSQL, MLflow
or S3 endpoint fails in seconds with a message naming it, instead of after MLflow's own
retries, and before anything is half-written.

`register_verified` is the only safe way to create a registry version: it checks that the
run's model files are in the artifact store first, and deletes the version again if
anything after its creation fails, so the registry never holds a version without files.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bukva import s3
from bukva.settings import Settings

CHECK_TIMEOUT_S = 5.0


class TrackingUnavailable(RuntimeError):
    """The tracking store, its database or its artifact store cannot be reached."""


def tracking_uri(settings: Settings | None = None) -> str:
    """MLFLOW_TRACKING_URI, or the embedded SQLite store under mlruns/."""
    return (settings or Settings.from_env()).tracking_uri


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
        import psycopg2

        dsn = uri.replace("postgresql+psycopg2://", "postgresql://", 1)
        try:
            psycopg2.connect(dsn, connect_timeout=max(1, int(timeout))).close()
        except psycopg2.OperationalError as exc:
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


def _identifier(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise ValueError(f"not a plain PostgreSQL database name: {name!r}")
    return f'"{name}"'


def postgres_database_url(base_url: str, database: str) -> str:
    """`postgresql://user@host:port` + database name."""
    return f"{base_url.rstrip('/')}/{database}"


def sqlalchemy_url(base_url: str, database: str) -> str:
    """The same database as a SQLAlchemy URL naming psycopg2, the driver installed here.

    SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which the lock file lacks.
    """
    url = postgres_database_url(base_url, database)
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def _connect(base_url: str, database: str = "postgres"):
    import psycopg2

    url = postgres_database_url(base_url, database)
    try:
        conn = psycopg2.connect(url, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise TrackingUnavailable(f"PostgreSQL at {_where(url)} is unreachable: {reason}") from exc
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    return conn


def ensure_database(base_url: str, database: str) -> bool:
    """Create `database` on the server at `base_url` if missing; True when created."""
    conn = _connect(base_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone():
                return False
            cur.execute(f"CREATE DATABASE {_identifier(database)}")
            return True
    finally:
        conn.close()


def drop_database(base_url: str, database: str) -> None:
    """Drop `database` (and end its sessions); no error when it does not exist."""
    conn = _connect(base_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {_identifier(database)} WITH (FORCE)")
    finally:
        conn.close()


def setup(experiment: str, settings: Settings | None = None, verify: bool = True) -> str:
    """Point MLflow at the configured store, check it, select `experiment`; return its id.

    Raises:
        TrackingUnavailable: the server, database or artifact store is down (named).
    """
    import mlflow

    uri = tracking_uri(settings)
    if verify:
        check(uri)
    mlflow.set_tracking_uri(uri)  # the registry follows it
    return mlflow.set_experiment(experiment).experiment_id


def ensure_buckets(buckets: Iterable[str], env: Mapping[str, str] | None = None) -> list[str]:
    """Create the missing buckets at the endpoint `env` names; return those created.

    Raises:
        TrackingUnavailable: the S3 endpoint is down or refuses (named in the message).
    """
    import os

    merged = dict(os.environ) | dict(env or {})
    try:
        client = s3.client(merged)
        return [name for name in buckets if s3.ensure_bucket(name, client)]
    except s3.StorageUnavailable as exc:
        raise TrackingUnavailable(str(exc)) from exc


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
