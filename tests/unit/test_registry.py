"""Unit tests: `bukva.registry`, the one home of the registry's names, tags, weights digest and
lookups (the real MLflow server answers the same: tests/services/test_tracking_server.py)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from bukva import registry
from bukva.registry import Version
from tests.support.mlflow_rest import mlflow_rest


def rest_version(number: str, weights: str = "", **tags: str) -> dict:
    """A model version as MLflow's REST API writes it (tags as key/value pairs)."""
    pairs = [{"key": k, "value": v} for k, v in tags.items()]
    if weights:
        pairs.append({"key": "weights_sha256", "value": weights})
    return {
        "name": "bukva-cnn",
        "version": number,
        "run_id": f"run{number}",
        "source": f"runs:/run{number}/model",
        "description": f"card {number}",
        "tags": pairs,
    }


def test_uris_name_a_version_or_an_alias():
    assert registry.CHAMPION_URI == "models:/bukva-cnn@champion"
    assert registry.version_uri(3) == "models:/bukva-cnn/3"
    assert registry.parse_uri("models:/bukva-cnn/3") == registry.ModelUri("bukva-cnn", "3")
    assert registry.parse_uri(registry.CHAMPION_URI) == registry.ModelUri(
        "bukva-cnn", alias="champion"
    )
    others = ("models/model", "s3://b/model", "runs:/abc/model", "models:/bukva-cnn/Production")
    for other in others:
        assert registry.parse_uri(other) is None, other


def test_the_weights_digest_is_the_sha256_of_the_weights_file(tmp_path):
    weights = bytes(range(256)) * 5000  # more than one read block
    (tmp_path / "model.safetensors").write_bytes(weights)
    assert registry.weights_digest(tmp_path) == hashlib.sha256(weights).hexdigest()
    with pytest.raises(FileNotFoundError):
        registry.weights_digest(tmp_path / "missing")


def test_metric_tags_round_trip():
    figures = {"label_accuracy": 0.9123456, "combined.case_accuracy": 0.5}
    tags = registry.metric_tags(figures)
    assert tags == {
        "metric.label_accuracy": "0.912346",
        "metric.combined.case_accuracy": "0.500000",
    }
    tags |= {"git_commit": "abc", "weights_sha256": "x", "metric.note": "not a number"}
    assert registry.metrics_from_tags(tags) == {
        "label_accuracy": 0.912346,
        "combined.case_accuracy": 0.5,
    }


def test_a_version_reads_alike_from_rest_json_and_from_mlflows_client():
    rest = Version.of(rest_version("4", "abc", **{"metric.label_accuracy": "0.9"}))
    client = Version.of(
        SimpleNamespace(
            version=4,  # the client's stores say 4 or "4"
            tags={"weights_sha256": "abc", "metric.label_accuracy": "0.9"},
            description="card 4",
            run_id="run4",
            source="runs:/run4/model",
        )
    )
    assert rest == client
    assert rest.weights == "abc" and rest.metrics == {"label_accuracy": 0.9}


def test_rest_lookups_by_alias_and_by_weights():
    held = [rest_version(str(n), f"w{n % 3}") for n in range(1, 6)]
    with mlflow_rest(held, {"champion": "4"}) as url:
        champion = registry.version_by_alias(url)
        assert (champion.version, champion.run_id, champion.description) == ("4", "run4", "card 4")
        assert registry.version_by_alias(url, "stable") is None  # no such alias
        assert registry.version_by_alias(url, name="other-model") is None  # no such model
        # Five versions in pages of two: all are read; the first with the weights wins.
        assert [v.version for v in registry.versions(url)] == ["1", "2", "3", "4", "5"]
        assert registry.version_by_weights(url, "w1").version == "1"
        assert registry.version_by_weights(url, "w2").version == "2"
        assert registry.version_by_weights(url, "unknown") is None
        assert registry.versions(url, "other-model") == []


def test_a_registry_that_cannot_be_asked_is_unavailable_naming_it():
    with pytest.raises(registry.RegistryUnavailable, match=r"MLflow at http://127.0.0.1:9 "):
        registry.version_by_alias("http://127.0.0.1:9")
    with pytest.raises(registry.RegistryUnavailable, match="not an MLflow server"):
        registry.version_by_alias("sqlite:///mlruns/mlflow.db")  # ask it through a client
    with mlflow_rest([], {}) as url, pytest.raises(registry.RegistryUnavailable, match="404"):
        registry.version_by_alias(url + "/not-mlflow")


def test_client_lookups_map_mlflows_answers():
    """The same questions through an MLflow client object (duck-typed: the core has no mlflow)."""

    class Missing(Exception):
        def __init__(self, code: str, message: str):
            super().__init__(message)
            self.error_code = code

    class Client:
        def __init__(self, alias_error: Exception | None = None):
            self.alias_error = alias_error

        def get_model_version_by_alias(self, name, alias):
            if self.alias_error:
                raise self.alias_error
            return SimpleNamespace(version="2", tags={}, description="", run_id="", source="")

        def search_model_versions(self, query):
            assert query == "name = 'bukva-cnn'"
            return [SimpleNamespace(version=str(n), tags={"weights_sha256": "w"}) for n in (3, 2)]

    assert registry.version_by_alias(Client()).version == "2"
    gone = Missing("INVALID_PARAMETER_VALUE", "Registered model alias champion not found.")
    assert registry.version_by_alias(Client(gone)) is None
    assert registry.version_by_alias(Client(Missing("RESOURCE_DOES_NOT_EXIST", "no"))) is None
    with pytest.raises(registry.RegistryUnavailable, match="database is locked"):
        registry.version_by_alias(Client(Missing("INTERNAL_ERROR", "database is locked")))
    assert registry.version_by_weights(Client(), "w").version == "2"  # the first registered
