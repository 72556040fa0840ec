"""`bukva.s3` against a real S3 API: moto in server mode on loopback (stands in for MinIO)."""

from __future__ import annotations

import pytest

from bukva import s3
from tests.services.conftest import S3Endpoint, free_port, unique


def test_parse_splits_bucket_and_prefix() -> None:
    assert s3.S3Location.parse("s3://models/bukva/v1/") == s3.S3Location("models", "bukva/v1")
    assert s3.S3Location.parse("s3://models") == s3.S3Location("models", "")
    assert s3.S3Location("b", "p").key("x/y") == "p/x/y"
    assert s3.S3Location("b", "").key("x") == "x"
    for bad in ("models/bukva", "s3://", "http://host/bucket"):
        with pytest.raises(ValueError):
            s3.S3Location.parse(bad)


def test_endpoint_prefers_aws_endpoint_url_over_mlflow_s3_endpoint() -> None:
    both = {"AWS_ENDPOINT_URL": "http://a:9000", "MLFLOW_S3_ENDPOINT_URL": "http://m:9000"}
    assert s3.endpoint_url(both) == "http://a:9000"
    assert s3.endpoint_url({"MLFLOW_S3_ENDPOINT_URL": "http://m:9000"}) == "http://m:9000"
    assert s3.endpoint_url({}) is None


@pytest.mark.integration
def test_ensure_bucket_creates_once(s3_endpoint: S3Endpoint) -> None:
    client = s3.client(s3_endpoint.env)
    bucket = unique("bucket").replace("_", "-")
    assert s3.ensure_bucket(bucket, client) is True
    assert s3.ensure_bucket(bucket, client) is False
    names = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert bucket in names


@pytest.mark.integration
def test_folder_round_trip_keeps_sub_paths(s3_endpoint: S3Endpoint, tmp_path) -> None:
    client = s3.client(s3_endpoint.env)
    bucket = unique("models").replace("_", "-")
    s3.ensure_bucket(bucket, client)
    source = tmp_path / "src"
    (source / "sub").mkdir(parents=True)
    (source / "config.json").write_text('{"width": 8}')
    (source / "sub" / "weights.bin").write_bytes(bytes(range(256)))
    keys = s3.upload_folder(source, f"s3://{bucket}/bukva/v1", client)
    assert sorted(keys) == ["bukva/v1/config.json", "bukva/v1/sub/weights.bin"]
    out = s3.download_folder(f"s3://{bucket}/bukva/v1/", tmp_path / "dst", client)
    assert (out / "config.json").read_text() == '{"width": 8}'
    assert (out / "sub" / "weights.bin").read_bytes() == bytes(range(256))


@pytest.mark.integration
def test_download_of_an_empty_prefix_says_so(s3_endpoint: S3Endpoint, tmp_path) -> None:
    client = s3.client(s3_endpoint.env)
    bucket = unique("empty").replace("_", "-")
    s3.ensure_bucket(bucket, client)
    with pytest.raises(FileNotFoundError, match=f"s3://{bucket}/nothing"):
        s3.download_folder(f"s3://{bucket}/nothing", tmp_path, client)


@pytest.mark.integration
def test_dead_endpoint_fails_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = s3.client({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}, endpoint=url)
    with pytest.raises(s3.StorageUnavailable, match=f"S3 endpoint {url}"):
        s3.ensure_bucket("any", client)
    with pytest.raises(s3.StorageUnavailable, match=f"S3 endpoint {url}"):
        s3.check(client)


def test_a_key_that_may_not_list_buckets_still_counts_as_an_answer() -> None:
    """In the cluster each client is a MinIO user without s3:ListAllMyBuckets: `check` must
    not report its AccessDenied as an endpoint that is down, while a wrong key still fails.
    (botocore's Stubber answers for the endpoint: moto, the S3 stand-in here, has no
    per-user bucket policies enabled.)"""
    from botocore.stub import Stubber

    client = s3.client(
        {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}, endpoint="http://127.0.0.1:9"
    )
    with Stubber(client) as stub:
        stub.add_client_error("list_buckets", "AccessDenied", http_status_code=403)
        s3.check(client)
        stub.add_client_error("list_buckets", "InvalidAccessKeyId", http_status_code=403)
        with pytest.raises(s3.StorageUnavailable, match="InvalidAccessKeyId"):
            s3.check(client)
