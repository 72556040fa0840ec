"""Real platform services for the tests: PostgreSQL, an S3 API, an MLflow tracking server.

PostgreSQL is the one on this machine (BUKVA_TEST_POSTGRES_URL, default
postgresql://postgres@127.0.0.1:5432); every test database has a unique name and is dropped
afterwards. The S3 endpoint is moto in server mode on a free loopback port: no MinIO server
can be installed on these machines, and moto speaks the same S3 API (the cluster runs MinIO).
The MLflow server is started by `launch.services.up`, the code behind `make services`, on
free ports with throwaway databases, once per session (its first start migrates the schema).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # pipelines/ and model/ are top-level packages, not installed
    sys.path.insert(0, str(ROOT))

from launch import backends, services  # noqa: E402
from launch.processes import free_port  # noqa: E402
from pipelines import tracking  # noqa: E402

POSTGRES_URL = os.environ.get("BUKVA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server; the integration tier needs one (skipped, saying why, without)."""
    try:
        tracking.check_database(backends.postgres_database_url(POSTGRES_URL, "postgres"), 3)
    except tracking.TrackingUnavailable as exc:
        pytest.skip(f"needs PostgreSQL (BUKVA_TEST_POSTGRES_URL): {exc}")
    return POSTGRES_URL


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    """A fresh, empty database (SQLAlchemy URL), dropped after the test."""
    name = unique("bukva_test")
    backends.ensure_database(postgres_url, name)
    yield backends.sqlalchemy_url(postgres_url, name)
    backends.drop_database(postgres_url, name)


@dataclass
class S3Endpoint:
    """A running moto S3 server and the environment that points boto3 at it."""

    url: str
    env: dict[str, str]
    service: services.Service


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Endpoint]:
    """moto's S3 API in server mode on a free loopback port (stands in for MinIO)."""
    run_dir = tmp_path_factory.mktemp("s3")
    service = services.start_s3("127.0.0.1", free_port(), run_dir)
    env = CREDENTIALS | {"AWS_ENDPOINT_URL": service.url, "MLFLOW_S3_ENDPOINT_URL": service.url}
    yield S3Endpoint(service.url, env, service)
    services.stop(service, run_dir)


@dataclass
class Platform:
    """What `make services` started: the client environment and its run folder."""

    env: dict[str, str]
    run_dir: Path
    args: object

    @property
    def tracking_uri(self) -> str:
        return self.env["MLFLOW_TRACKING_URI"]


@pytest.fixture(scope="session")
def platform(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """`launch.services.up` on free ports with throwaway databases; `down` afterwards."""
    run_dir = tmp_path_factory.mktemp("services")
    args = services.build_parser().parse_args(
        [
            "up",
            f"--run-dir={run_dir}",
            f"--mlflow-port={free_port()}",
            f"--s3-port={free_port()}",
            f"--postgres-url={postgres_url}",
            f"--mlflow-db={unique('bukva_test_mlflow')}",
            f"--optuna-db={unique('bukva_test_optuna')}",
        ]
    )
    saved = {k: os.environ.pop(k) for k in CREDENTIALS if k in os.environ}
    os.environ.update(CREDENTIALS)
    try:
        env = services.up(args)
        yield Platform(env, run_dir, args)
    finally:
        args.purge = True
        services.down(args)
        backends.drop_database(postgres_url, args.optuna_db)
        for key in CREDENTIALS:
            os.environ.pop(key, None)
        os.environ.update(saved)


@pytest.fixture
def platform_env(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """This process pointed at the platform (env vars and MLflow's URIs), reset afterwards."""
    import mlflow

    for key, value in platform.env.items():
        monkeypatch.setenv(key, value)
    yield platform
    while mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
