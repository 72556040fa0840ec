"""A DVC remote in an S3 bucket (moto on loopback standing in for MinIO): `dvc push` and
`dvc pull` round-trip the data; the endpoint lives in `.dvc/config.local`, credentials only in
the environment, so nothing machine-specific or secret is in the committed config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bukva import s3
from launch import services
from tests.services.conftest import S3Endpoint, free_port, unique

pytestmark = pytest.mark.integration
DVC = str(Path(sys.executable).with_name("dvc"))


def dvc(repo: Path, *args: str, env: dict[str, str], check: bool = True):
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | env
    done = subprocess.run(
        [DVC, *args], cwd=repo, env=full, capture_output=True, text=True, timeout=300
    )
    if check and done.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture
def repo(tmp_path: Path, s3_endpoint: S3Endpoint) -> Path:
    """A DVC repository with one tracked folder of data."""
    path = tmp_path / "repo"
    (path / "data").mkdir(parents=True)
    (path / "data" / "images.bin").write_bytes(os.urandom(50_000))
    (path / "data" / "index.csv").write_text("id,label\n1,ж\n", encoding="utf-8")
    dvc(path, "init", "--no-scm", "-q", env=s3_endpoint.env)
    dvc(path, "add", "-q", "data", env=s3_endpoint.env)
    return path


def test_push_and_pull_round_trip_through_the_bucket(repo: Path, s3_endpoint: S3Endpoint) -> None:
    bucket = unique("dvc").replace("_", "-")
    client = s3.client(s3_endpoint.env)
    s3.ensure_bucket(bucket, client)
    services.configure_dvc_remote(repo, f"s3://{bucket}/store", s3_endpoint.url)
    original = {p.name: p.read_bytes() for p in (repo / "data").iterdir()}

    dvc(repo, "push", env=s3_endpoint.env)
    stored = list(s3.list_keys(s3.S3Location(bucket, "store"), client))
    assert len(stored) == 3  # two files and the directory listing, content-addressed

    shutil.rmtree(repo / "data")
    shutil.rmtree(repo / ".dvc" / "cache")
    dvc(repo, "pull", env=s3_endpoint.env)
    assert {p.name: p.read_bytes() for p in (repo / "data").iterdir()} == original

    committed = (repo / ".dvc" / "config").read_text()
    local = (repo / ".dvc" / "config.local").read_text()
    assert s3_endpoint.url not in committed and "testing" not in committed
    assert s3_endpoint.url in local and f"s3://{bucket}/store" in local
    assert "testing" not in local  # credentials stay in the environment


def test_push_with_the_endpoint_down_fails_naming_it(repo: Path, s3_endpoint: S3Endpoint) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    services.configure_dvc_remote(repo, "s3://bukva-dvc/store", dead)
    env = s3_endpoint.env | {"AWS_ENDPOINT_URL": dead, "AWS_MAX_ATTEMPTS": "1"}
    done = dvc(repo, "push", env=env, check=False)
    assert done.returncode != 0
    assert dead in done.stdout + done.stderr
