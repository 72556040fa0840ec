"""Unit tests: the predictor's model source resolution and its FP32 fast path."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bukva.serving import fast_fp32_request
from model.source import ModelSourceError, is_local, registry_version, resolve, weights_digest


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


def test_registry_version_of_a_pinned_uri_or_the_weights_digest(model_dir):
    assert registry_version("models:/bukva-cnn/3", "unused", model_dir) == "3"
    digest = f"sha256:{weights_digest(model_dir)[:12]}"
    # No registry knows a plain folder here: the weights' digest names the model instead.
    assert registry_version(str(model_dir), "sqlite:///nowhere.db", model_dir) == digest
    assert registry_version(str(model_dir), "http://127.0.0.1:9", model_dir) == digest
    assert registry_version("models:/bukva-cnn/Production", "unused", model_dir) == digest


def test_registry_version_found_by_the_weights_digest(model_dir):
    """A plain folder whose weights a registry server knows: that version (REST lookup)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    tagged = {"key": "weights_sha256", "value": weights_digest(model_dir)}
    found = {"model_versions": [{"version": "2", "tags": []}, {"version": "7", "tags": [tagged]}]}

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path.startswith("/api/2.0/mlflow/model-versions/search?")
            data = json.dumps(found if ok else {}).encode()
            self.send_response(200 if ok else 404)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert registry_version(str(model_dir), url, model_dir) == "7"
    finally:
        server.shutdown()
        server.server_close()


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
