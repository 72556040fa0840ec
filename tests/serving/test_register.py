"""The register stage: versions with tags and signature, and the promotion gate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipelines.register import Gate, Paired, decide, dvc_data_tags


def combined(label: float, case: float | None = None) -> dict[str, float]:
    """Flattened metrics as `evaluate.numbers` gives them: the combined set's figures."""
    out = {"combined.label_accuracy": label, "label_accuracy": label}
    if case is not None:
        out["combined.case_accuracy"] = case
    return out


def test_margin_gate_decisions():
    gate = Gate(test="margin", min_improvement=0.005, max_guard_drop=0.02)
    champion = combined(0.90, 0.80)
    assert decide(combined(0.5), None, gate).promote
    assert not decide(combined(0.90), champion, gate).promote  # a tie is no win
    assert not decide(combined(0.904), champion, gate).promote  # below the margin
    assert decide(combined(0.92, 0.79), champion, gate).promote
    worse_case = decide(combined(0.95, 0.70), champion, gate)
    assert not worse_case.promote and "case_accuracy" in worse_case.reason
    assert not decide({}, champion, gate).promote
    # the scanned split alone no longer decides: a champion without combined figures
    assert decide(combined(0.5), {"label_accuracy": 0.99}, gate).promote


def test_paired_gate_needs_a_significant_win_on_the_same_images():
    gate = Gate()  # mcnemar, alpha 0.05
    champion = combined(0.90, 0.80)
    new = combined(0.905, 0.80) | {
        "combined.label_accuracy_interval_low": 0.89,
        "combined.label_accuracy_interval_high": 0.92,
    }
    # 20 images gained, 5 lost: p = P(X >= 20 | n=25, 1/2) = 0.0020
    win = decide(new, champion, gate, Paired(gained=20, lost=5, images=3800))
    assert win.promote and win.p_value == pytest.approx(0.002039, abs=1e-6)
    assert "20 gained, 5 lost" in win.reason and "[0.8900, 0.9200]" in win.reason
    # 14 gained, 9 lost: better by 5 images, which chance gives often (p = 0.20)
    noise = decide(new, champion, gate, Paired(gained=14, lost=9, images=3800))
    assert not noise.promote and noise.p_value == pytest.approx(0.2024, abs=1e-4)
    assert "not below 0.05" in noise.reason
    assert not decide(new, champion, gate, Paired(gained=5, lost=20, images=3800)).promote
    guarded = decide(combined(0.95, 0.70), champion, gate, Paired(40, 2, 3800))
    assert not guarded.promote and "case_accuracy" in guarded.reason
    # without the champion's answers (another input format) the margin decides
    fallback = decide(combined(0.95, 0.80), champion, gate, None)
    assert fallback.promote and "cannot read these images" in fallback.reason


def test_exact_mcnemar_and_wilson_match_known_values():
    from pipelines.metrics import mcnemar_exact, wilson

    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(1 / 32)
    assert mcnemar_exact(0, 5) == 1.0
    low, high = wilson(136, 147)  # scanned letters at 92.5%: about +-4 points
    assert (round(low, 4), round(high, 4)) == (0.871, 0.9577)
    assert wilson(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson(3, 0) != wilson(3, 0)  # nan: no images, no interval


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
    figures = {"label_accuracy": label_accuracy, "case_accuracy": 0.8}
    metrics.write_text(json.dumps(figures | {"combined": figures}))
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
    assert "not beaten by more than the margin" in second["reason"]

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
    assert "not beaten" in rejected.tags["promotion"]


@pytest.mark.integration
def test_predictor_serves_the_registered_champion(registry, model_dir):
    import httpx
    import mlflow.pyfunc
    from serving_helpers import Server

    from bukva.registry import weights_digest
    from pipelines.register import register

    metrics = registry / "metrics.json"
    metrics.write_text(json.dumps({"label_accuracy": 0.5, "combined": {"label_accuracy": 0.5}}))
    outcome = register(model_dir, metrics, registry / "dvc.lock", Gate())
    env = {"BUKVA_HOME": str(registry), "MLFLOW_TRACKING_URI": "", "STORAGE_URI": ""}
    server = Server("model", ["--model_uri", "models:/bukva-cnn@champion"], registry, env).start()
    try:
        assert httpx.get(f"{server.url}/v2/models/bukva/ready").status_code == 200
        # The version carries model.onnx of these weights: the predictor serves it as it is.
        from bukva.settings import Settings
        from model.runtime import OnnxNet
        from model.source import resolve

        folder = resolve(
            "models:/bukva-cnn@champion", Settings.from_env().tracking_uri, registry / "download"
        )
        exported = OnnxNet(folder / "model.onnx").metadata["weights_sha256"]
        assert exported == weights_digest(model_dir)
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
        # MLflow's own loaders read the same version (the onnx flavour, through pyfunc) and
        # answer as the predictor does, for the same images and geometry.
        rng = np.random.default_rng(3)
        feeds = {
            "image": rng.random((4, 1, 28, 28), dtype=np.float32),
            "geometry": rng.random((4, 5), dtype=np.float32),
        }
        served = predictor_answer(server.url, feeds)
        loaded = mlflow.pyfunc.load_model(f"models:/bukva-cnn/{version}")
        assert loaded.metadata.flavors.keys() == {"onnx", "python_function"}
        assert loaded.metadata.metadata == {"weights_sha256": weights_digest(model_dir)}
        answered = loaded.predict(feeds)
        assert answered.keys() == served.keys() == {"label_logits", "uppercase_logit"}
        for name, logits in served.items():
            np.testing.assert_allclose(answered[name], logits, rtol=1e-6, atol=1e-6)
        # Its input example is the signature's: pyfunc checks it against the schema.
        example = loaded.input_example
        assert {k: v.shape for k, v in example.items()} == {
            "image": (1, 1, 28, 28),
            "geometry": (1, 5),
        }
        assert loaded.predict(example)["label_logits"].shape == (1, 43)
    finally:
        server.stop()


def predictor_answer(url: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The predictor's outputs for `feeds` over v2 REST (JSON), as arrays."""
    import httpx

    inputs = [
        {"name": k, "datatype": "FP32", "shape": list(v.shape), "data": v.ravel().tolist()}
        for k, v in feeds.items()
    ]
    answer = httpx.post(f"{url}/v2/models/bukva/infer", json={"inputs": inputs}).json()
    return {
        o["name"]: np.asarray(o["data"], np.float32).reshape(o["shape"]) for o in answer["outputs"]
    }


def test_gate_comes_from_params_yaml(tmp_path):
    from pipelines.common import StageError
    from pipelines.register import load_gate

    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n")
    assert load_gate(params) == Gate()
    params.write_text("register:\n  metric: top3_accuracy\n  min_improvement: 0.02\n")
    assert load_gate(params) == Gate(metric="top3_accuracy", min_improvement=0.02)
    params.write_text("register:\n  test: t-test\n")
    with pytest.raises(StageError, match="mcnemar, margin"):
        load_gate(params)
    params.write_text("register:\n  metrc: x\n")
    with pytest.raises(StageError, match="metrc"):
        load_gate(params)


@pytest.mark.integration
def test_version_points_at_the_training_run(registry):
    """The run tagged with the weights' sha256 (the training run) is the one registered, its
    `model/` artifacts the version's files; the model folder itself names no run."""
    import torch
    from mlflow.tracking import MlflowClient

    from bukva.network import BukvaNet, save
    from pipelines.register import register
    from pipelines.tracking import stage_run, tag_weights

    torch.manual_seed(3)
    with stage_run("train") as other:  # another training: other weights, not this one
        tag_weights(other, save(BukvaNet(), registry / "other"))
    torch.manual_seed(4)
    with stage_run("train") as run:
        folder = save(BukvaNet(), registry / "trained")
        tag_weights(run, folder)
        run.log_artifacts(folder, "model")
    assert "extra" not in json.loads((folder / "config.json").read_text())
    metrics = registry / "metrics.json"
    metrics.write_text(json.dumps({"label_accuracy": 0.7}))
    result = register(folder, metrics, registry / "dvc.lock", Gate())
    version = MlflowClient().get_model_version("bukva-cnn", str(result["version"]))
    assert version.run_id == run.run_id
    assert version.source == f"runs:/{run.run_id}/model"


@pytest.mark.integration
def test_paired_gate_runs_the_champions_files_on_the_same_images(registry):
    """register fetches the champion's weights from the registry and reads the evaluation
    images with them: the verdict, its tags and registration.json carry the paired counts and
    the p-value; the model card becomes the version's description."""
    import torch
    from mlflow.tracking import MlflowClient

    from pipelines.data import Dataset
    from pipelines.metrics import correct
    from pipelines.register import register

    lock = registry / "dvc.lock"
    old, old_metrics = make_model(registry, "old", 0.90, seed=1)
    new, new_metrics = make_model(registry, "new", 0.90, seed=2)
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(400, 1, 28, 28, generator=gen)
    geometry = torch.zeros(400, 5)
    # Labels chosen so that the new model is right on 40 images the old one gets wrong, and the
    # old one on 10 the new one gets wrong (where the two disagree).
    from bukva.network import load
    from pipelines.metrics import predict

    said_new = predict(load(new), images, geometry)[0].argmax(dim=1)
    said_old = predict(load(old), images, geometry)[0].argmax(dim=1)
    differ = torch.nonzero(said_new != said_old).flatten()
    assert len(differ) >= 50, "the two random networks should disagree often"
    keep = differ[:50]
    labels = torch.cat([said_new[keep[:40]], said_old[keep[40:]]])
    rows = [{"id": str(i)} for i in range(50)]
    sets = {"probe": Dataset(images[keep], labels, torch.full((50,), -1), rows, geometry[keep])}
    card = registry / "model_card.md"
    card.write_text("# Model card: bukva-cnn\n\nfigures here\n", encoding="utf-8")

    first = register(old, old_metrics, lock, Gate(), sets, card)
    assert first["promoted"] and first["paired"] is None  # no champion yet
    second = register(new, new_metrics, lock, Gate(), sets, card)
    assert second["paired"] == {"gained": 40, "lost": 10, "images": 50}
    assert second["promoted"] and second["p_value"] < 1e-4
    assert int(correct(new, sets).sum()) == 40

    client = MlflowClient()
    version = client.get_model_version("bukva-cnn", str(second["version"]))
    assert version.tags["gate.gained"] == "40" and version.tags["gate.lost"] == "10"
    assert float(version.tags["gate.p_value"]) == pytest.approx(second["p_value"], rel=1e-5)
    assert "exact McNemar" in version.tags["promotion"]
    assert version.description.startswith("# Model card: bukva-cnn")
    assert "model/model_card.md" in {a.path for a in client.list_artifacts(version.run_id, "model")}

    # The old one back: the champion (the new one) now wins the same images 40 to 10.
    third = register(old, old_metrics, lock, Gate(), sets, card)
    assert not third["promoted"] and third["paired"] == {"gained": 10, "lost": 40, "images": 50}


def test_has_champion_reads_the_sqlite_store_as_mlflow_does(tmp_path, monkeypatch):
    """`make up`'s first question (`pipelines.tracking.has_champion`) reads the embedded store's
    alias table directly instead of importing MLflow: before the alias, with it, after it is
    moved off the model, and with an empty store file (no such table: MLflow's client answers),
    it must give MLflow's own answer. A real SQLite store written by MLflow; no mock."""
    from mlflow.tracking import MlflowClient

    from bukva.registry import CHAMPION_ALIAS, REGISTERED_MODEL
    from pipelines import tracking

    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert tracking.has_champion() is False  # no store file yet
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(REGISTERED_MODEL)
    version = client.create_model_version(REGISTERED_MODEL, "runs:/x/model", run_id=None)

    def mlflow_says() -> bool:
        try:
            client.get_model_version_by_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
        except Exception:
            return False
        return True

    assert tracking._sqlite_alias(db, REGISTERED_MODEL, CHAMPION_ALIAS) is False
    assert tracking.has_champion() is mlflow_says() is False
    client.set_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS, version.version)
    assert tracking.has_champion() is mlflow_says() is True
    client.set_registered_model_alias(REGISTERED_MODEL, "other", version.version)
    client.delete_registered_model_alias(REGISTERED_MODEL, CHAMPION_ALIAS)
    assert tracking.has_champion() is mlflow_says() is False

    empty = tmp_path / "empty.db"
    empty.touch()
    assert tracking._sqlite_alias(empty, REGISTERED_MODEL, CHAMPION_ALIAS) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{empty}")
    assert tracking.has_champion() is False  # answered by MLflow's client
