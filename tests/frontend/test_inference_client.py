"""The app's v2 client: what it sends, how it reads answers, and how failures surface."""

from __future__ import annotations

import json
import struct

import httpx
import numpy as np
import pytest

from frontend.client import (
    ANSWER_OUTPUTS,
    InferenceClient,
    InferenceError,
    InferenceUnavailable,
    parse_response,
)

PNG = b"\x89PNG\r\n\x1a\n-fake-drawing"


def v2_body(labels: list[str], probs: list[float], upper: float, known: bool, status: str) -> dict:
    return {
        "model_name": "bukva",
        "model_version": "4",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [1, len(labels)], "data": labels},
            {"name": "probability", "datatype": "FP32", "shape": [1, len(probs)], "data": probs},
            {"name": "uppercase_probability", "datatype": "FP32", "shape": [1], "data": [upper]},
            {"name": "case_known", "datatype": "BOOL", "shape": [1], "data": [known]},
            {"name": "status", "datatype": "BYTES", "shape": [1], "data": [status]},
        ],
    }


def sent_header(request: httpx.Request) -> dict:
    """The JSON part of a binary-data request."""
    return json.loads(request.content[: int(request.headers["Inference-Header-Content-Length"])])


def client_answering(handler) -> InferenceClient:
    return InferenceClient("http://bukva.test/serving/", transport=httpx.MockTransport(handler))


def test_sends_the_png_bytes_as_they_are_to_the_v2_route() -> None:
    """One BYTES tensor in the v2 binary-data extension: the JSON header, then the element's
    4-byte little-endian length and the PNG itself (no base64 on either side)."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=v2_body(["ж", "х", "к"], [0.8, 0.1, 0.05], 0.9, True, "ok"))

    prediction = client_answering(handler).predict(PNG, "letters")

    (request,) = seen
    assert str(request.url) == "http://bukva.test/serving/v2/models/bukva/infer"
    header = sent_header(request)
    (tensor,) = header["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("image", "BYTES", [1])
    assert tensor["parameters"] == {"binary_data_size": 4 + len(PNG)}
    binary = request.content[int(request.headers["Inference-Header-Content-Length"]) :]
    assert binary == struct.pack("<I", len(PNG)) + PNG
    assert header["parameters"] == {"mode": "letters"} and "outputs" not in header
    assert prediction.labels == ("ж", "х", "к")
    assert prediction.probabilities == pytest.approx((0.8, 0.1, 0.05))
    assert prediction.top == "ж" and prediction.uppercase is True
    assert prediction.model_version == "4" and prediction.model_input is None


def test_the_model_input_is_asked_for_and_read_from_binary_data() -> None:
    """With `model_input`, the request names the outputs it reads plus `model_input` as binary
    data, and the 28x28 floats are read from after the answer's JSON."""
    image = np.linspace(0, 1, 28 * 28, dtype="<f4").reshape(28, 28)
    body = v2_body(["ж"], [0.8], 0.9, True, "ok")
    body["outputs"].append(
        {
            "name": "model_input",
            "datatype": "FP32",
            "shape": [1, 28, 28],
            "parameters": {"binary_data_size": image.nbytes},
        }
    )
    head = json.dumps(body).encode()
    asked: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.extend(sent_header(request)["outputs"])
        headers = {"Inference-Header-Content-Length": str(len(head))}
        return httpx.Response(200, content=head + image.tobytes(), headers=headers)

    prediction = client_answering(handler).predict(PNG, model_input=True)

    names = [o["name"] for o in asked]
    assert names[:-1] == list(ANSWER_OUTPUTS) and asked[-1] == {
        "name": "model_input",
        "parameters": {"binary_data": True},
    }
    assert np.array_equal(prediction.model_input, image) and prediction.top == "ж"
    short = head + image.tobytes()[:-4]  # binary data cut short: an error, not garbage
    cut = client_answering(
        lambda r: httpx.Response(
            200, content=short, headers={"Inference-Header-Content-Length": str(len(head))}
        )
    )
    with pytest.raises(InferenceError, match="model_input"):
        cut.predict(PNG, model_input=True)


def test_a_model_input_that_is_not_28x28_is_an_error() -> None:
    body = v2_body(["ж"], [0.8], 0.9, True, "ok")
    body["outputs"].append(
        {"name": "model_input", "datatype": "FP32", "shape": [1, 4], "data": [0.0] * 4}
    )
    with pytest.raises(InferenceError, match="28x28"):
        parse_response(body)


@pytest.mark.parametrize(
    ("labels", "upper", "known", "expected"),
    [
        (["ж"], 0.2, True, False),  # a cased letter, lowercase
        (["ф"], 0.9, False, None),  # case unknown for this letter
        (["7"], 0.9, True, None),  # digits never have a case
    ],
)
def test_case_is_only_reported_where_it_means_something(
    labels: list[str], upper: float, known: bool, expected: bool | None
) -> None:
    assert parse_response(v2_body(labels, [0.9], upper, known, "ok")).uppercase is expected


def test_blank_answer_has_no_labels() -> None:
    prediction = parse_response(v2_body(["", "", ""], [0.0, 0.0, 0.0], 0.0, False, "blank"))
    assert prediction.status == "blank" and prediction.labels == () and prediction.top == ""


def test_missing_output_is_a_clear_error() -> None:
    body = v2_body(["а"], [0.9], 0.1, True, "ok")
    body["outputs"] = [o for o in body["outputs"] if o["name"] != "status"]
    with pytest.raises(InferenceError, match="no 'status' output"):
        parse_response(body)


@pytest.mark.parametrize("status", [500, 503, 404])
def test_server_side_failures_mean_unavailable(status: int) -> None:
    client = client_answering(lambda r: httpx.Response(status, json={"error": "predictor down"}))
    with pytest.raises(InferenceUnavailable, match="predictor down"):
        client.predict(PNG)


def test_bad_request_keeps_the_servers_reason() -> None:
    client = client_answering(lambda r: httpx.Response(400, json={"error": "image is empty"}))
    with pytest.raises(InferenceError, match="HTTP 400: image is empty"):
        client.predict(PNG)


def test_connection_refused_and_timeouts_mean_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("too slow", request=request)

    with pytest.raises(InferenceUnavailable, match=r"cannot reach http://bukva\.test/serving"):
        client_answering(refuse).predict(PNG)
    with pytest.raises(InferenceUnavailable, match="did not answer in time"):
        client_answering(slow).predict(PNG)


def test_model_version_from_metadata_or_empty() -> None:
    def metadata(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"name": "bukva", "versions": ["12"]})

    assert client_answering(metadata).model_version() == "12"
    assert (
        client_answering(lambda r: httpx.Response(200, json={"versions": None})).model_version()
        == ""
    )
    assert client_answering(lambda r: httpx.Response(503, text="down")).model_version() == ""


@pytest.mark.parametrize("mode", ["anything", "letters", "digits"])
def test_sends_the_mode_and_reads_the_twin(mode: str) -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(sent_header(request))
        body = v2_body(["з", "3", "э"], [0.55, 0.4, 0.01], 0.1, True, "ok")
        body["outputs"].append(
            {"name": "alternative", "datatype": "BYTES", "shape": [1], "data": ["3"]}
        )
        return httpx.Response(200, json=body)

    prediction = client_answering(handler).predict(PNG, mode)
    assert seen[0]["parameters"] == {"mode": mode}
    assert prediction.alternative == "3" and prediction.mode == mode


def test_default_mode_is_anything_and_a_missing_twin_output_means_none() -> None:
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(sent_header(request))
        return httpx.Response(200, json=v2_body(["ж"], [0.9], 0.2, True, "ok"))

    prediction = client_answering(handler).predict(PNG)
    assert seen[0]["parameters"] == {"mode": "anything"}
    assert prediction.alternative == "" and prediction.mode == "anything"
