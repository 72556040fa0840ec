"""Unit tests: the predictor's model source resolution and its FP32 fast path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model.server import fast_fp32_request
from model.source import ModelSourceError, is_local, resolve


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
