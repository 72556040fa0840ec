"""The register stage: versions with tags and signature, and the promotion gate."""

from __future__ import annotations

import json

import pytest

from pipelines.register import Gate, decide, dvc_data_tags


def test_gate_decisions():
    gate = Gate(min_improvement=0.005, max_guard_drop=0.02)
    champion = {"label_accuracy": 0.90, "case_accuracy": 0.80}
    assert decide({"label_accuracy": 0.5}, None, gate).promote
    assert not decide({"label_accuracy": 0.90}, champion, gate).promote  # a tie is no win
    assert not decide({"label_accuracy": 0.904}, champion, gate).promote  # below the margin
    assert decide({"label_accuracy": 0.92, "case_accuracy": 0.79}, champion, gate).promote
    worse_case = decide({"label_accuracy": 0.95, "case_accuracy": 0.70}, champion, gate)
    assert not worse_case.promote and "case_accuracy" in worse_case.reason
    assert not decide({}, champion, gate).promote


def test_dvc_data_tags_read_the_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        "schema: '2.0'\nstages:\n"
        "  ingest:\n    outs:\n    - path: data/raw\n      md5: abc.dir\n"
        "  train:\n    deps:\n    - path: data/prepared\n      md5: def.dir\n"
        "    - path: pipelines/train.py\n      md5: 123\n"
    )
    tags = dvc_data_tags(lock)
    assert tags == {"dvc_data_hash": "abc.dir", "dvc.data/prepared": "def.dir"}
    assert dvc_data_tags(tmp_path / "missing.lock") == {"dvc_data_hash": "unknown"}


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """An empty embedded registry (SQLite under BUKVA_HOME/mlruns) for this test alone."""
    monkeypatch.setenv("BUKVA_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def make_model(root, name: str, label_accuracy: float, seed: int):
    import torch

    from bukva.network import BukvaNet, save

    torch.manual_seed(seed)
    folder = save(BukvaNet(), root / name)
    metrics = root / f"{name}.json"
    metrics.write_text(
        json.dumps({"label_accuracy": label_accuracy, "case_accuracy": 0.8, "per_class": {}})
    )
    return folder, metrics


@pytest.mark.integration
def test_worse_model_does_not_take_champion(registry):
    from mlflow.tracking import MlflowClient

    from pipelines.register import register

    lock = registry / "dvc.lock"
    good, good_metrics = make_model(registry, "good", 0.90, seed=1)
    worse, worse_metrics = make_model(registry, "worse", 0.80, seed=2)
    better, better_metrics = make_model(registry, "better", 0.95, seed=3)

    first = register(good, good_metrics, lock, Gate())
    assert (first["version"], first["promoted"], first["champion"]) == (1, True, 1)

    second = register(worse, worse_metrics, lock, Gate())
    assert (second["version"], second["promoted"], second["champion"]) == (2, False, 1)
    assert "does not beat" in second["reason"]

    again = register(good, good_metrics, lock, Gate())  # same weights: no new version
    assert (again["version"], again["promoted"]) == (1, False)

    third = register(better, better_metrics, lock, Gate())
    assert (third["version"], third["promoted"], third["champion"]) == (3, True, 3)

    client = MlflowClient()
    champion = client.get_model_version_by_alias("bukva-cnn", "champion")
    assert str(champion.version) == "3"
    for key in ("metric.label_accuracy", "git_commit", "dvc_data_hash", "weights_sha256"):
        assert key in champion.tags, key
    rejected = client.get_model_version("bukva-cnn", "2")
    assert "does not beat" in rejected.tags["promotion"]


@pytest.mark.integration
def test_predictor_serves_the_registered_champion(registry, model_dir):
    import httpx
    from serving_helpers import Server

    from pipelines.register import register

    metrics = registry / "metrics.json"
    metrics.write_text(json.dumps({"label_accuracy": 0.5}))
    outcome = register(model_dir, metrics, registry / "dvc.lock", Gate())
    env = {"BUKVA_HOME": str(registry), "MLFLOW_TRACKING_URI": "", "STORAGE_URI": ""}
    server = Server("model", ["--model_uri", "models:/bukva-cnn@champion"], registry, env).start()
    try:
        assert httpx.get(f"{server.url}/v2/models/bukva/ready").status_code == 200
        # The version carries model.onnx of these weights: the predictor serves it as it is.
        from bukva.settings import Settings
        from model.runtime import OnnxNet, weights_sha256
        from model.source import resolve

        folder = resolve("models:/bukva-cnn@champion", Settings.from_env().tracking_uri)
        exported = OnnxNet(folder / "model.onnx").metadata["weights_sha256"]
        assert exported == weights_sha256(model_dir)
        assert "exporting the network to ONNX" not in server.log.read_text()
        # It says which registry version it serves: metadata, every answer, its metrics.
        version = str(outcome["champion"])
        assert httpx.get(f"{server.url}/v2/models/bukva").json()["versions"] == [version]
        body = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28]}]}
        body["inputs"][0]["data"] = [0.0] * 784
        answer = httpx.post(f"{server.url}/v2/models/bukva/infer", json=body).json()
        assert answer["model_version"] == version
        metrics = httpx.get(f"{server.url}/metrics").text
        info = f'source="models:/bukva-cnn@champion",version="{version}"'
        assert f"bukva_predictor_model_info{{{info}}} 1.0" in metrics
    finally:
        server.stop()


def test_gate_comes_from_params_yaml(tmp_path):
    from pipelines.common import StageError
    from pipelines.register import load_gate

    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n")
    assert load_gate(params) == Gate()
    params.write_text("register:\n  metric: top3_accuracy\n  min_improvement: 0.01\n")
    assert load_gate(params) == Gate(metric="top3_accuracy", min_improvement=0.01)
    params.write_text("register:\n  metrc: x\n")
    with pytest.raises(StageError, match="metrc"):
        load_gate(params)


@pytest.mark.integration
def test_version_points_at_the_training_run(registry):
    """When config.json names a run in this store, its `model/` artifacts are registered."""
    from mlflow.tracking import MlflowClient

    from bukva.network import BukvaNet, save
    from pipelines.register import register
    from pipelines.tracking import stage_run

    with stage_run("train") as run:
        folder = save(BukvaNet(), registry / "trained", extra={"mlflow_run_id": run.run_id})
        run.log_artifacts(folder, "model")
    metrics = registry / "metrics.json"
    metrics.write_text(json.dumps({"label_accuracy": 0.7}))
    result = register(folder, metrics, registry / "dvc.lock", Gate())
    version = MlflowClient().get_model_version("bukva-cnn", str(result["version"]))
    assert version.run_id == run.run_id
    assert version.source == f"runs:/{run.run_id}/model"
