"""Every kind of bad request gets HTTP 400 / gRPC INVALID_ARGUMENT with a reason, and the
servers keep serving afterwards."""

from __future__ import annotations

import base64
import io
import json
import struct

import grpc
import httpx
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from PIL import Image
from serving_helpers import MAX_BATCH, MAX_BYTES

pytestmark = pytest.mark.integration


def png(size: tuple[int, int], mode: str = "L", noise: bool = False) -> bytes:
    image = Image.new(mode, size, 255)
    if noise:
        rng = np.random.default_rng(0)
        image = Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def v2(inputs: list[dict], **extra) -> dict:
    return {"inputs": inputs, **extra}


def image_input(
    data: list, datatype: str = "BYTES", shape: list | None = None, name: str = "image"
):
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def binary_body(items: list[bytes]) -> tuple[bytes, dict]:
    raw = b"".join(struct.pack("<I", len(i)) + i for i in items)
    spec = {"name": "image", "datatype": "BYTES", "shape": [len(items)]}
    header = json.dumps(
        {"inputs": [spec | {"parameters": {"binary_data_size": len(raw)}}]}
    ).encode()
    return header + raw, {"inference-header-content-length": str(len(header))}


JSON_CASES = {
    "not an image": (v2([image_input([b64(b"hello, not a picture")])]), "not a PNG or JPEG"),
    "not base64": (v2([image_input(["%%% definitely not base64 %%%"])]), "neither PNG/JPEG"),
    "decompression bomb": (v2([image_input([b64(png((5000, 5000), "1"))])]), "pixels"),
    "wrong datatype": (v2([image_input([0.5] * 4, "FP32", [1, 2, 2])]), "must be BYTES"),
    "canvas without alpha": (v2([image_input([0] * 300, "UINT8", [1, 10, 10, 3])]), "[N, H, W, 4]"),
    "BYTES not 1-D": (v2([image_input([b64(b"x")], shape=[1, 1])]), "shape [N]"),
    "data and shape disagree": (v2([image_input([b64(b"x")], shape=[2])]), "does not match shape"),
    "wrong input name": (v2([image_input([b64(b"x")], name="picture")]), "named 'image'"),
    "two inputs": (v2([image_input([b64(b"x")]), image_input([b64(b"x")])]), "exactly one"),
    "too many images": (v2([image_input([b64(b"x")] * (MAX_BATCH + 1))]), "limit"),
    "no images": (v2([image_input([], shape=[0])]), "no images"),
    "bad top_k": (v2([image_input([b64(b"x")])], parameters={"top_k": 99}), "top_k"),
    "unknown mode": (
        v2([image_input([b64(b"x")])], parameters={"mode": "numbers"}),
        "mode must be one of anything, letters, digits; got 'numbers'",
    ),
    "not a v2 body": ({"instances": [1, 2]}, "inputs"),
    "input lacks datatype": (v2([{"name": "image", "shape": [1], "data": ["x"]}]), "datatype"),
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_json_bad_input_is_400_with_reason(transformer, case):
    body, reason = JSON_CASES[case]
    response = httpx.post(f"{transformer.url}/v2/models/bukva/infer", json=body)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]


@pytest.mark.parametrize("content_type", ["application/json", None])
def test_malformed_json_is_400(transformer, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = httpx.post(
        f"{transformer.url}/v2/models/bukva/infer", content=b'{"inputs": [', headers=headers
    )
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_binary_truncated_and_oversized_images_are_400(transformer, pngs):
    cases = {
        "truncated": (pngs[0][: len(pngs[0]) // 2], "truncated"),
        "too many bytes": (png((640, 640), noise=True), f"limit is {MAX_BYTES}"),
        "empty": (b"", "empty"),
    }
    for name, (data, reason) in cases.items():
        body, headers = binary_body([data])
        response = httpx.post(
            f"{transformer.url}/v2/models/bukva/infer", content=body, headers=headers
        )
        assert response.status_code == 400, name
        assert reason in response.json()["error"], name


def test_binary_header_lies_are_400(transformer, pngs):
    body, _ = binary_body([pngs[0]])
    for length in ("abc", str(len(body) + 10)):
        response = httpx.post(
            f"{transformer.url}/v2/models/bukva/infer",
            content=body,
            headers={"inference-header-content-length": length},
        )
        assert response.status_code == 400
        assert "inference-header-content-length" in response.json()["error"]


def test_unknown_model_is_404_naming_it(transformer, predictor):
    for server in (transformer, predictor):
        response = httpx.post(f"{server.url}/v2/models/nope/infer", json=v2([image_input(["x"])]))
        assert response.status_code == 404
        assert "nope" in response.json()["error"]


def test_predictor_rejects_bad_tensors(predictor):
    cases = [
        (
            v2(
                [
                    {
                        "name": "image",
                        "datatype": "FP32",
                        "shape": [1, 1, 28, 27],
                        "data": [0.0] * 756,
                    }
                ]
            ),
            "shape",
        ),
        (
            v2(
                [{"name": "image", "datatype": "INT32", "shape": [1, 1, 28, 28], "data": [0] * 784}]
            ),
            "FP32",
        ),
        (
            v2([{"name": "image", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.0] * 5}]),
            "does not match",
        ),
        (
            v2([{"name": "x", "datatype": "FP32", "shape": [1, 1, 28, 28], "data": [0.0] * 784}]),
            "named 'image'",
        ),
    ]
    for body, reason in cases:
        response = httpx.post(f"{predictor.url}/v2/models/bukva/infer", json=body)
        assert response.status_code == 400, body
        assert reason in response.json()["error"]


def test_grpc_bad_input_is_invalid_argument(transformer):
    stub = GRPCInferenceServiceStub(grpc.insecure_channel(transformer.grpc))
    cases = [
        pb.ModelInferRequest(
            model_name="bukva",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
            ],
            raw_input_contents=[struct.pack("<I", 5) + b"hello"],
        ),
        pb.ModelInferRequest(
            model_name="bukva",
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name="image",
                    datatype="FP32",
                    shape=[1],
                    contents=pb.InferTensorContents(fp32_contents=[1.0]),
                )
            ],
        ),
    ]
    for request in cases:
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "image" in info.value.details()
    bad_mode = pb.ModelInferRequest(
        model_name="bukva",
        inputs=[pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])],
        raw_input_contents=[struct.pack("<I", 5) + b"hello"],
        parameters={"mode": pb.InferParameter(string_param="cyrillic")},
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(bad_mode, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mode must be one of anything, letters, digits" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_server_keeps_serving_and_counts_rejections(transformer, pngs):
    body = v2([image_input([b64(pngs[0])])])
    response = httpx.post(f"{transformer.url}/v2/models/bukva/infer", json=body)
    assert response.status_code == 200
    metrics = httpx.get(f"{transformer.url}/metrics").text
    assert 'bukva_invalid_input_total{reason="not_an_image"}' in metrics
