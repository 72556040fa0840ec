"""`make services`: MLflow on PostgreSQL with artifacts in S3 (moto on loopback, standing in
for MinIO), the registry's all-or-nothing registration, and fail-fast errors naming the
endpoint that is down."""

from __future__ import annotations

import argparse
import json

import pytest

from bukva import s3
from launch import backends, services
from pipelines import tracking
from tests.services.conftest import Platform, free_port, unique

pytestmark = pytest.mark.integration


def _model_folder(path):
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"weights")
    (path / "config.json").write_text(json.dumps({"width": 8}))
    return path


def test_up_writes_the_client_environment(platform: Platform) -> None:
    written = (platform.run_dir / "env").read_text().splitlines()
    assert f"export MLFLOW_TRACKING_URI={platform.tracking_uri}" in written
    assert set(services.running(platform.run_dir)) == {"mlflow", "s3"}
    assert platform.env["BUKVA_OPTUNA_STORAGE"].startswith("postgresql+psycopg://")


def test_a_run_logs_artifacts_into_the_bucket(platform_env: Platform, tmp_path) -> None:
    import mlflow

    tracking.setup(unique("exp"))
    with mlflow.start_run() as run:
        mlflow.log_metric("label_accuracy", 0.9)
        mlflow.log_artifacts(str(_model_folder(tmp_path / "m")), "model")
    # The run record is in PostgreSQL (via the server), the files in the S3 bucket.
    assert mlflow.get_run(run.info.run_id).data.metrics["label_accuracy"] == 0.9
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    location = s3.S3Location(services.ARTIFACTS_BUCKET, "artifacts")
    keys = list(s3.list_keys(location, s3.client(platform_env.env)))
    assert any(k.endswith(f"{run.info.run_id}/artifacts/model/model.safetensors") for k in keys)
    assert tracking.artifact_files(run.info.run_id) == {
        "model/model.safetensors",
        "model/config.json",
    }


def test_register_verified_refuses_a_version_without_its_files(
    platform_env: Platform, tmp_path
) -> None:
    import mlflow
    from mlflow import MlflowClient

    tracking.setup(unique("exp"))
    name = unique("model")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(_model_folder(tmp_path / "m") / "config.json"), "model")
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        tracking.register_verified(run.info.run_id, "model", name, ["model.safetensors"])
    assert MlflowClient().search_model_versions(f"name = '{name}'") == []

    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(_model_folder(tmp_path / "ok")), "model")
    version = tracking.register_verified(
        run.info.run_id, "model", name, ["model.safetensors", "config.json"], {"k": 1}, "champion"
    )
    champion = MlflowClient().get_model_version_by_alias(name, "champion")
    assert champion.version == version.version and champion.tags["k"] == "1"


def test_the_registry_answers_alike_over_rest_and_through_mlflows_client(
    platform_env: Platform, tmp_path
) -> None:
    """`bukva.registry` asks the real MLflow server over REST (the app, the predictor, the
    monitoring) and through MLflow's client (`register`): the same versions, the same misses."""
    import mlflow
    from mlflow import MlflowClient

    from bukva import registry

    tracking.setup(unique("exp"))
    name = unique("model")
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(_model_folder(tmp_path / "m")), "model")
    digests = ["a" * 64, "b" * 64, "a" * 64]  # the first weights registered twice
    for digest in digests:
        tags = {registry.WEIGHTS_TAG: digest} | registry.metric_tags({"label_accuracy": 0.9})
        tracking.register_verified(run.info.run_id, "model", name, ["config.json"], tags)
    client, url = MlflowClient(), platform_env.tracking_uri
    assert registry.version_by_alias(url, name=name) is None  # no champion yet
    assert registry.version_by_alias(client, name=name) is None
    client.set_registered_model_alias(name, registry.CHAMPION_ALIAS, "2")
    for asked in (url, client):
        champion = registry.version_by_alias(asked, name=name)
        assert (champion.version, champion.weights) == ("2", "b" * 64)
        assert champion.metrics == {"label_accuracy": 0.9}
        assert champion.run_id == run.info.run_id
        assert sorted(v.version for v in registry.versions(asked, name)) == ["1", "2", "3"]
        assert registry.version_by_weights(asked, "a" * 64, name).version == "1"
        assert registry.version_by_weights(asked, "c" * 64, name) is None
        assert registry.version_by_alias(asked, name=unique("absent")) is None
    assert registry.version_by_alias(url, name=name) == registry.version_by_alias(client, name=name)


def test_check_names_a_tracking_server_that_is_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(tracking.TrackingUnavailable, match=f"MLflow tracking server at {url}"):
        tracking.check(url)


def test_check_names_a_postgresql_that_is_down() -> None:
    port = free_port()
    uri = f"postgresql+psycopg://postgres@127.0.0.1:{port}/bukva_mlflow"
    with pytest.raises(tracking.TrackingUnavailable, match=f"PostgreSQL at 127.0.0.1:{port}"):
        tracking.check(uri)


def test_up_with_postgresql_down_fails_fast_and_starts_nothing(tmp_path) -> None:
    port = free_port()
    args = services.build_parser().parse_args(
        ["up", f"--run-dir={tmp_path}", f"--postgres-url=postgresql://postgres@127.0.0.1:{port}"]
    )
    with pytest.raises(backends.BackendUnavailable, match=f"PostgreSQL at .*:{port}"):
        services.up(args)
    assert services.running(tmp_path) == {}
    assert not (tmp_path / "env").exists()


def test_server_with_its_s3_down_fails_the_check_naming_the_endpoint(
    database: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # the artifact store's endpoint: nothing there
    s3_env = {"MLFLOW_S3_ENDPOINT_URL": dead, "AWS_ENDPOINT_URL": dead} | {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    server = services.start_mlflow(
        database, "s3://bukva-mlflow/artifacts", "127.0.0.1", free_port(), tmp_path, s3_env
    )
    try:
        for key, value in s3_env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(tracking.TrackingUnavailable, match=f"S3 endpoint {dead}"):
            tracking.check(server.url)
    finally:
        services.stop(server, tmp_path)
    assert services.running(tmp_path) == {}


def test_down_stops_only_what_up_started(tmp_path) -> None:
    service = services.start_s3("127.0.0.1", free_port(), tmp_path)
    assert set(services.running(tmp_path)) == {"s3"}
    args = argparse.Namespace(run_dir=str(tmp_path), purge=False)
    assert services.down(args) == ["s3"]
    assert services.running(tmp_path) == {}
    assert service.process is not None and service.process.wait(timeout=10) is not None
