"""REST decoding: v2 bodies (JSON, or JSON + binary data) into InferRequests, kept raw.

KServe's decoder, `InferRequest.from_bytes`, turns every binary-extension tensor into a Python
list (`set_data_from_numpy(..., binary_data=False)`): slow for FP32 batches, and fatal for
BYTES that are not UTF-8, such as PNGs (HTTP 500). Upstream:
https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/protocol/infer_type.py
(`InferRequest.from_bytes`); `tests/serving/test_kserve_upstream.py` fails once it keeps raw
bytes, and then these two decoders can go.

- `parse_rest_request` (transformer) decodes every body itself and names what is wrong with a
  bad one;
- `fast_fp32_request` (predictor) keeps binary FP32 inputs as raw bytes and leaves anything
  else to KServe (its general path and its error messages).

Both set `InferInput._raw_data`, the attribute KServe's own decoder and `as_numpy` use for
binary data (no public setter takes bytes).
"""

from __future__ import annotations

from typing import Any

import orjson
from kserve import InferInput, InferRequest
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import RequestedOutput


def _fail(message: str) -> InvalidInput:
    return InvalidInput(f"malformed v2 request: {message}")


def _input(spec: Any, index: int, body: bytes, start: int) -> tuple[InferInput, int]:
    """One input from its JSON description, taking binary data from `body` at `start`."""
    if not isinstance(spec, dict):
        raise _fail(f"inputs[{index}] is not an object")
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise _fail(f"inputs[{index}] needs string 'name' and 'datatype'")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise _fail(f"input '{name}': 'shape' must be a list of non-negative integers")
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _fail(f"input '{name}': 'parameters' must be an object")
    tensor = InferInput(name=name, shape=shape, datatype=datatype, parameters=parameters)
    size = parameters.get("binary_data_size")
    if "data" in spec:
        tensor.data = spec["data"]
        return tensor, start
    if not isinstance(size, int) or size < 0 or start + size > len(body):
        raise _fail(
            f"input '{name}' has neither 'data' nor a valid 'binary_data_size' "
            f"({size!r}; {len(body) - start} bytes of binary data left)"
        )
    tensor._raw_data = body[start : start + size]  # kept raw: BYTES need not be UTF-8
    return tensor, start + size


def parse_rest_request(body: bytes, json_length: str | None, model_name: str) -> InferRequest:
    """Decode a v2 REST body (plain JSON, or JSON + binary data) into an InferRequest.

    Raises:
        InvalidInput: naming what is wrong with the body.
    """
    header_bytes = body
    if json_length is not None:
        try:
            length = int(json_length)
        except ValueError:
            raise _fail(
                f"{INFERENCE_CONTENT_LENGTH_HEADER} is not a number: {json_length!r}"
            ) from None
        if not 0 < length <= len(body):
            raise _fail(
                f"{INFERENCE_CONTENT_LENGTH_HEADER} {length} exceeds the body ({len(body)})"
            )
        header_bytes = body[:length]
    try:
        header = orjson.loads(header_bytes)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"body is not valid JSON ({exc})") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise _fail("the JSON object needs an 'inputs' list")
    start, inputs = len(header_bytes), []
    for index, spec in enumerate(header["inputs"]):
        tensor, start = _input(spec, index, body, start)
        inputs.append(tensor)
    outputs = header.get("outputs")
    if outputs is not None and not (
        isinstance(outputs, list) and all(isinstance(o, dict) and "name" in o for o in outputs)
    ):
        raise _fail("'outputs' must be a list of objects with a 'name'")
    parameters = header.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _fail("'parameters' must be an object")
    return InferRequest(
        model_name=model_name,
        infer_inputs=inputs,
        request_id=header.get("id"),
        parameters=parameters,
        request_outputs=[RequestedOutput(o["name"], o.get("parameters")) for o in outputs]
        if outputs
        else None,
    )


def fast_fp32_request(body: bytes, json_length: str | None, model_name: str) -> InferRequest | None:
    """An InferRequest holding the raw bytes of its binary FP32 inputs (the predictor's `image`
    and `geometry`); None for anything else (which then takes KServe's general path and its
    error messages)."""
    try:
        length = int(json_length or "")
        header = orjson.loads(body[:length])
        specs = header["inputs"]
        sizes = [int(spec["parameters"]["binary_data_size"]) for spec in specs]
        shapes = [[int(s) for s in spec["shape"]] for spec in specs]
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        return None
    if not specs or length + sum(sizes) != len(body):
        return None
    if any(spec.get("datatype") != "FP32" or "data" in spec for spec in specs):
        return None
    tensors, start = [], length
    for spec, size, shape in zip(specs, sizes, shapes, strict=True):
        tensor = InferInput(spec.get("name", ""), shape, "FP32", parameters=spec["parameters"])
        tensor._raw_data = body[start : start + size]
        tensors.append(tensor)
        start += size
    parameters = header.get("parameters")
    return InferRequest(
        model_name=model_name,
        infer_inputs=tensors,
        request_id=header.get("id"),
        parameters=parameters if isinstance(parameters, dict) else None,
    )
