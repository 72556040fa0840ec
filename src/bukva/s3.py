"""S3-compatible object storage: a client from the environment, buckets, folder copies.

Used by the platform services (artifact and DVC buckets), the predictor (an `s3://` model
folder) and the feedback store. The endpoint is any S3 API: MinIO in the cluster, moto in
server mode on loopback in tests and local runs, AWS itself when no endpoint is set.

boto3 is imported inside the functions, so the core package stays cheap for components
that never touch S3. Every failure to reach the endpoint raises `StorageUnavailable` with
the endpoint in the message, after a short timeout and one retry, never a long hang.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bukva.settings import Settings

# Fail fast: a dead endpoint should cost seconds, not botocore's default minutes of retries.
CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 30
MAX_ATTEMPTS = 2


class StorageUnavailable(RuntimeError):
    """The S3 endpoint cannot be reached or refused the request; the message names it."""


@dataclass(frozen=True)
class S3Location:
    """A parsed `s3://bucket/prefix` URI (prefix without leading or trailing slash)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, uri: str) -> S3Location:
        """Split `s3://bucket/some/prefix`; raise ValueError for anything else."""
        if not uri.startswith("s3://"):
            raise ValueError(f"not an s3:// URI: {uri!r}")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"s3 URI has no bucket: {uri!r}")
        return cls(bucket, prefix.strip("/"))

    def key(self, name: str) -> str:
        """The object key of `name` under this prefix."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def is_s3_uri(uri: str) -> bool:
    """True for `s3://...` locations."""
    return uri.startswith("s3://")


def endpoint_url(env: Mapping[str, str] | None = None) -> str | None:
    """The S3 endpoint: AWS_ENDPOINT_URL, else MLFLOW_S3_ENDPOINT_URL, else None (AWS).

    `env` (default: the process environment) is read through `Settings`, like every variable.
    """
    settings = Settings.from_env(env)
    return settings.aws_endpoint_url or settings.mlflow_s3_endpoint_url or None


def describe_endpoint(url: str | None) -> str:
    """How error messages name the endpoint."""
    return f"S3 endpoint {url}" if url else "S3 endpoint (AWS default)"


def client(env: Mapping[str, str] | None = None, endpoint: str | None = None) -> Any:
    """A boto3 S3 client for `endpoint` (default: from the environment), with short timeouts.

    Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in `env` (default: the
    process environment), else from any other source boto3 knows. Path-style addressing,
    since MinIO and moto serve every bucket under one host name.
    """
    import boto3
    from botocore.config import Config

    settings = Settings.from_env(env)
    url = endpoint if endpoint is not None else endpoint_url(env)
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        s3={"addressing_style": "path"},
    )
    return boto3.client(
        "s3",
        endpoint_url=url,
        config=config,
        region_name=settings.aws_default_region,
        # None lets boto3 fall back to its other sources (profiles, instance roles).
        aws_access_key_id=settings.aws_access_key_id or None,
        aws_secret_access_key=settings.aws_secret_access_key or None,
        aws_session_token=settings.aws_session_token or None,
    )


def _endpoint_of(s3: Any) -> str:
    return s3.meta.endpoint_url


def _unavailable(s3: Any, action: str, exc: Exception) -> StorageUnavailable:
    return StorageUnavailable(f"{describe_endpoint(_endpoint_of(s3))}: cannot {action}: {exc}")


def _errors() -> tuple[type[Exception], ...]:
    """Every exception boto3 raises for a failed request (network, refusal, transfer)."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, Boto3Error)


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def ensure_bucket(bucket: str, s3: Any | None = None) -> bool:
    """Create `bucket` if it does not exist; return True when it was created.

    Raises:
        StorageUnavailable: the endpoint is down or refuses (bad credentials, no permission).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    s3 = s3 or client()
    try:
        s3.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise _unavailable(s3, f"open bucket {bucket!r}", exc) from exc
    except BotoCoreError as exc:
        raise _unavailable(s3, f"open bucket {bucket!r}", exc) from exc
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as exc:
        if _error_code(exc) in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            return False  # another process won the race
        raise _unavailable(s3, f"create bucket {bucket!r}", exc) from exc
    except BotoCoreError as exc:
        raise _unavailable(s3, f"create bucket {bucket!r}", exc) from exc
    return True


def check(s3: Any | None = None) -> None:
    """Raise StorageUnavailable unless the endpoint answers a cheap authenticated request.

    AccessDenied is an answer: the endpoint is up and knows the key, whose user may just not
    list buckets (in the cluster each client is a MinIO user limited to its own buckets).
    """
    s3 = s3 or client()
    try:
        s3.list_buckets()
    except _errors() as exc:
        if _error_code(exc) == "AccessDenied":
            return
        raise _unavailable(s3, "list buckets", exc) from exc


def list_keys(location: S3Location, s3: Any | None = None) -> Iterator[str]:
    """Every object key under `location` (all pages)."""
    s3 = s3 or client()
    prefix = f"{location.prefix}/" if location.prefix else ""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                yield item["Key"]
    except _errors() as exc:
        raise _unavailable(s3, f"list {location}", exc) from exc


def download_folder(uri: str, destination: str | Path, s3: Any | None = None) -> Path:
    """Copy every object under `s3://bucket/prefix` into `destination`, keeping sub-paths.

    Raises:
        FileNotFoundError: nothing is stored under the prefix.
        StorageUnavailable: the endpoint is down or refuses.
    """
    location = S3Location.parse(uri)
    s3 = s3 or client()
    destination = Path(destination)
    keys = list(list_keys(location, s3))
    if not keys:
        raise FileNotFoundError(
            f"no objects under {location} at {describe_endpoint(_endpoint_of(s3))}"
        )
    cut = len(location.prefix) + 1 if location.prefix else 0
    for key in keys:
        if key.endswith("/"):
            continue  # folder marker objects some tools write
        target = destination / key[cut:]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            s3.download_file(location.bucket, key, str(target))
        except _errors() as exc:
            raise _unavailable(s3, f"download s3://{location.bucket}/{key}", exc) from exc
    return destination


def upload_folder(source: str | Path, uri: str, s3: Any | None = None) -> list[str]:
    """Copy every file under `source` to `s3://bucket/prefix/...`; return the keys written."""
    location = S3Location.parse(uri)
    s3 = s3 or client()
    source = Path(source)
    if not source.is_dir():
        raise FileNotFoundError(f"not a folder: {source}")
    written = []
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        key = location.key(path.relative_to(source).as_posix())
        try:
            s3.upload_file(str(path), location.bucket, key)
        except _errors() as exc:
            raise _unavailable(s3, f"upload {path} to s3://{location.bucket}/{key}", exc) from exc
        written.append(key)
    return written
