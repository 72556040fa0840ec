"""Unit tests: the predictor's model source resolution and its FP32 fast path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bukva.registry import weights_digest
from bukva.serving import fast_fp32_request
from model.source import ModelSourceError, is_local, pin, resolve, served_version


def test_local_uris_need_no_download():
    assert is_local("/mnt/models") and is_local("models/model") and is_local("file:///x")
    assert not is_local("models:/bukva-cnn@champion")
    assert not is_local("runs:/abc/model") and not is_local("s3://bucket/model")


def test_resolve_finds_the_model_folder(model_dir, tmp_path):
    assert resolve(str(model_dir), "unused") == model_dir
    assert resolve(f"file://{model_dir.parent}", "unused") == model_dir  # its only child
    with pytest.raises(ModelSourceError, match="does not exist"):
        resolve(str(tmp_path / "missing"), "unused")
    with pytest.raises(ModelSourceError, match=r"no model\.safetensors"):
        resolve(str(tmp_path), "unused")


def test_the_served_version_is_the_declared_one_else_the_uris_else_the_digest(model_dir):
    digest = f"sha256:{weights_digest(model_dir)[:12]}"
    assert pin(str(model_dir), "unused") == (str(model_dir), "")
    assert pin("s3://bucket/model", "unused") == ("s3://bucket/model", "")
    assert pin("models:/bukva-cnn/3", "unused") == ("models:/bukva-cnn/3", "3")
    # Declared by the deployment (--model_version): what it says, for any source.
    assert served_version("5", "", model_dir) == "5"
    assert served_version("3", "3", model_dir) == "3"
    assert served_version("", "3", model_dir) == "3"
    # Nobody said, and no registry URI: the weights' digest names the model. The registry is
    # never searched for it.
    assert served_version("", "", model_dir) == digest
    assert pin("models:/bukva-cnn/3", "unused", declared="3") == ("models:/bukva-cnn/3", "3")
    with pytest.raises(ModelSourceError, match="--model_version 4 but models:/bukva-cnn/3 is"):
        pin("models:/bukva-cnn/3", "unused", declared="4")


def test_the_predictor_reports_the_version_it_is_deployed_with(model_dir):
    """`python -m model --model_version 7` (the chart's predictor.modelVersion): a folder that
    holds version 7 says 7, in its metadata and every answer; a contradiction stops it."""
    import asyncio

    from model.__main__ import build_parser
    from model.model import BukvaPredictor

    args = build_parser().parse_args(["--model_dir", str(model_dir), "--model_version", "7"])
    predictor = BukvaPredictor("bukva", args.model_dir, model_version=args.model_version)
    assert predictor.load()
    assert predictor.version == "7" and asyncio.run(predictor.served_versions()) == ["7"]
    pinned = BukvaPredictor("bukva", "models:/bukva-cnn/3", model_version="7", tracking_uri="-")
    with pytest.raises(ModelSourceError, match="--model_version 7 but models:/bukva-cnn/3 is"):
        pinned.load()  # before anything is downloaded


def test_an_alias_is_pinned_before_the_download(model_dir, tmp_path):
    """`models:/name@alias` becomes `models:/name/<version>` as the registry says now (here the
    embedded SQLite store, through MLflow's client); a missing alias or a dead server is a
    ModelSourceError naming the URI."""
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store, registry_uri=store)
    client.create_registered_model("bukva-cnn")
    for _ in range(2):
        client.create_model_version("bukva-cnn", str(model_dir))
    client.set_registered_model_alias("bukva-cnn", "champion", "2")
    assert pin("models:/bukva-cnn@champion", store) == ("models:/bukva-cnn/2", "2")
    with pytest.raises(ModelSourceError, match=r"models:/bukva-cnn@stable: .*no such alias"):
        pin("models:/bukva-cnn@stable", store)
    with pytest.raises(ModelSourceError, match="--model_version 1 but models:/bukva-cnn@champ"):
        pin("models:/bukva-cnn@champion", store, declared="1")
    with pytest.raises(ModelSourceError, match="models:/bukva-cnn@champion: MLflow at"):
        pin("models:/bukva-cnn@champion", "http://127.0.0.1:9")


def test_a_downloaded_model_leaves_no_copy_behind(model_dir, tmp_path, monkeypatch):
    """A registry version is downloaded for loading only: after `load()` the predictor answers
    from memory and the temporary download folder is gone (each start used to leave one)."""
    import tempfile

    from mlflow import MlflowClient

    from model.model import BukvaPredictor

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(store, registry_uri=store)
    client.create_registered_model("bukva-cnn")
    client.create_model_version("bukva-cnn", str(model_dir))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    predictor = BukvaPredictor("bukva", "models:/bukva-cnn/1", tracking_uri=store)
    assert predictor.load()
    assert predictor.version == "1"
    feeds = predictor.feeds(np.zeros((2, 1, 28, 28), np.float32), None)
    assert predictor.net(feeds)["label_logits"].shape == (2, 43)
    assert [p.name for p in scratch.iterdir() if p.name.startswith("bukva-")] == []


def body(array: np.ndarray, datatype: str = "FP32", extra: int = 0) -> tuple[bytes, str]:
    raw = array.tobytes()
    spec = {"name": "image", "datatype": datatype, "shape": list(array.shape)}
    header = json.dumps({"inputs": [spec | {"parameters": {"binary_data_size": len(raw)}}]})
    return header.encode() + raw + b"\0" * extra, str(len(header))


def test_fast_path_keeps_fp32_bytes_raw():
    batch = np.arange(2 * 784, dtype=np.float32).reshape(2, 1, 28, 28)
    request = fast_fp32_request(*body(batch), "bukva")
    assert np.array_equal(request.inputs[0].as_numpy(), batch)
    assert request.inputs[0].data is None  # never became a Python list


def test_fast_path_keeps_image_and_geometry_raw():
    batch = np.arange(2 * 784, dtype=np.float32).reshape(2, 1, 28, 28)
    geometry = np.arange(10, dtype=np.float32).reshape(2, 5)
    specs, raw = [], b""
    for name, array in (("image", batch), ("geometry", geometry)):
        data = array.tobytes()
        specs.append(
            {"name": name, "datatype": "FP32", "shape": list(array.shape)}
            | {"parameters": {"binary_data_size": len(data)}}
        )
        raw += data
    header = json.dumps({"inputs": specs}).encode()
    request = fast_fp32_request(header + raw, str(len(header)), "bukva")
    assert [i.name for i in request.inputs] == ["image", "geometry"]
    assert np.array_equal(request.inputs[0].as_numpy(), batch)
    assert np.array_equal(request.inputs[1].as_numpy(), geometry)


@pytest.mark.parametrize(
    ("payload", "length"),
    [
        (body(np.zeros((1, 4), np.int32), "INT32")[0], body(np.zeros((1, 4), np.int32))[1]),
        (*body(np.zeros((1, 4), np.float32), extra=3),),
        (b"{}", "2"),
        (b"not json", "8"),
        (b"{}", None),
    ],
)
def test_anything_else_takes_kserves_general_path(payload, length):
    assert fast_fp32_request(payload, length, "bukva") is None
