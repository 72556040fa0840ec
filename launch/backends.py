"""The stores behind `make services`: PostgreSQL databases and S3 buckets, created on demand.

`make services` creates the MLflow and Optuna databases on a PostgreSQL server it does not
start, and the artifact, DVC and feedback buckets on the S3 endpoint; the tests create and drop
throwaway databases the same way. Failures raise `BackendUnavailable` naming the endpoint
(never its password).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from bukva import s3


class BackendUnavailable(RuntimeError):
    """PostgreSQL or the S3 endpoint cannot be reached or refused; the message names it."""


def where(url: str) -> str:
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
    """The same database as a SQLAlchemy URL naming psycopg (3), the driver installed here
    (SQLAlchemy 2.1's default for a bare `postgresql://` too; named so that it reads the same
    under SQLAlchemy 2.0, whose default was psycopg2)."""
    url = postgres_database_url(base_url, database)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _connect(base_url: str, database: str = "postgres") -> Any:
    import psycopg

    url = postgres_database_url(base_url, database)
    try:
        # autocommit: CREATE/DROP DATABASE cannot run inside a transaction
        return psycopg.connect(url, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0]
        raise BackendUnavailable(f"PostgreSQL at {where(url)} is unreachable: {reason}") from exc


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


def ensure_buckets(buckets: Iterable[str], env: Mapping[str, str]) -> list[str]:
    """Create the missing buckets at the endpoint `env` names; return those created."""
    try:
        client = s3.client(env)
        return [name for name in buckets if s3.ensure_bucket(name, client)]
    except s3.StorageUnavailable as exc:
        raise BackendUnavailable(str(exc)) from exc
