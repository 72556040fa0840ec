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
from serving_helpers import MAX_BATCH, MAX_BYTES, MAX_REQUEST_BYTES, MAX_REQUEST_PIXELS

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
    "PNG sent as canvas": (v2([image_input([b64(b"x")], name="canvas")]), "must be UINT8"),
    "shape -1": (v2([image_input([b64(b"x")], shape=[-1])]), "-1 appears only in metadata"),
    "canvas of 0x0": (v2([image_input([], "UINT8", [1, 0, 0, 4], name="canvas")]), "1x1"),
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
    url = f"{transformer.url}/v2/models/bukva/infer"
    rejected = httpx.post(url, json=v2([image_input([b64(b"not an image")])]))
    assert rejected.status_code == 400
    response = httpx.post(url, json=v2([image_input([b64(pngs[0])])]))
    assert response.status_code == 200
    metrics = httpx.get(f"{transformer.url}/metrics").text
    assert 'bukva_transformer_invalid_input_total{reason="not_an_image"}' in metrics


INFER = "/v2/models/bukva/infer"


def test_request_budget_of_pixels_and_bytes(transformer):
    """Pixels are budgeted per request, not only per image: each image below its own limits,
    together over the request's, is a 400 before any pixel is decoded (bytes: below)."""
    side = 250  # 8 images of 250x250: 500k pixels against the test server's 400k
    assert MAX_BATCH * side * side > MAX_REQUEST_PIXELS > MAX_BATCH * 200 * 200
    many = v2([image_input([b64(png((side, side)))] * MAX_BATCH)])
    canvases = v2([image_input([0] * 4, "UINT8", [MAX_BATCH, side, side, 4], name="canvas")])
    for body, says in ((many, "pixels"), (canvases, "pixels")):
        response = httpx.post(f"{transformer.url}{INFER}", json=body, timeout=30)
        assert response.status_code == 400, response.text
        assert "per request" in response.json()["error"] and says in response.json()["error"]
    fits = v2([image_input([b64(png((200, 200)))] * MAX_BATCH)])
    assert httpx.post(f"{transformer.url}{INFER}", json=fits, timeout=30).status_code == 200


def test_a_body_over_the_budget_is_refused_unread(transformer, predictor):
    """A REST body over --max_request_bytes is a 400 by its Content-Length, or once a chunked
    one passes the limit; a gRPC message over it is RESOURCE_EXHAUSTED."""
    big = b"{" + b" " * MAX_REQUEST_BYTES + b"}"
    response = httpx.post(f"{transformer.url}{INFER}", content=big, timeout=30)
    assert response.status_code == 400
    assert f"limit is {MAX_REQUEST_BYTES} per request" in response.json()["error"]

    def chunks():
        for _ in range(4):
            yield b" " * (MAX_REQUEST_BYTES // 2)

    response = httpx.post(f"{transformer.url}{INFER}", content=chunks(), timeout=30)
    assert response.status_code == 400 and "per request" in response.json()["error"]
    small = v2([image_input([b64(png((40, 40)))])])

    def small_chunks():
        yield json.dumps(small).encode()

    assert httpx.post(f"{transformer.url}{INFER}", content=small_chunks()).status_code == 200
    stub = GRPCInferenceServiceStub(grpc.insecure_channel(transformer.grpc))
    tensor = pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[1])
    request = pb.ModelInferRequest(
        model_name="bukva",
        inputs=[tensor],
        raw_input_contents=[struct.pack("<I", MAX_REQUEST_BYTES) + b"x" * MAX_REQUEST_BYTES],
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The predictor has the same guard (its default: 16 MiB).
    response = httpx.post(f"{predictor.url}{INFER}", content=b" " * (17 << 20), timeout=30)
    assert response.status_code == 400 and "per request" in response.json()["error"]


def test_grpc_shape_minus_one_is_invalid(transformer, pngs):
    """-1 is a metadata wildcard; a request's tensor says how many images it holds."""
    stub = GRPCInferenceServiceStub(grpc.insecure_channel(transformer.grpc))
    tensor = pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[-1])
    request = pb.ModelInferRequest(
        model_name="bukva",
        inputs=[tensor],
        raw_input_contents=[struct.pack("<I", len(pngs[0])) + pngs[0]],
    )
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "-1 appears only in metadata" in info.value.details()


def one_pixel(mode: str, value) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (1, 1), value).save(buf, format="PNG")
    return buf.getvalue()


def test_a_one_pixel_image_is_blank(transformer):
    """A 1x1 image decodes, but cannot hold a drawing (`bukva.preprocess` needs 4 ink pixels):
    "blank", as any image without enough ink, whatever its one pixel is. Not a 400: nothing is
    wrong with the request, and no size threshold would be right for ink-cropped images."""
    images = [
        one_pixel("L", 0),
        one_pixel("L", 255),
        one_pixel("RGBA", (0, 0, 0, 0)),
        one_pixel("RGBA", (0, 0, 0, 255)),
    ]
    response = httpx.post(
        f"{transformer.url}{INFER}", json=v2([image_input(list(map(b64, images)))])
    )
    assert response.status_code == 200, response.text
    status = next(o for o in response.json()["outputs"] if o["name"] == "status")
    assert status["data"] == ["blank"] * 4
    canvas = v2([image_input([0, 0, 0, 255], "UINT8", [1, 1, 1, 4], name="canvas")])
    response = httpx.post(f"{transformer.url}{INFER}", json=canvas)
    assert response.status_code == 200, response.text
    status = next(o for o in response.json()["outputs"] if o["name"] == "status")
    assert status["data"] == ["blank"]
