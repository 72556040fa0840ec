"""KServe server glue: a stricter v2 REST decoder and 400s (not 422s or 500s) for bad requests.

Stock KServe 0.21 has three gaps this module closes for the transformer:

1. Binary-extension BYTES inputs are round-tripped through UTF-8 strings
   (`InferRequest.from_bytes` -> `set_data_from_numpy(binary_data=False)`), so raw PNG bytes
   fail with HTTP 500. `V2DataPlane` keeps binary tensors as raw bytes instead.
2. A JSON body without `content-type: application/json` is read as binary and rejected with a
   confusing message; malformed JSON with that header gets FastAPI's 422. Both become 400
   with the parser's reason.
3. Every bad request, unknown model or unavailable predictor is logged as an error with a
   full stack trace. `OneLineRequestErrors` turns each into one line.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import InferInput, InferRequest, ModelServer
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import RequestedOutput


def _fail(message: str) -> InvalidInput:
    return InvalidInput(f"malformed v2 request: {message}")


def _tensor(spec: Any, index: int, body: bytes, start: int) -> tuple[InferInput, int]:
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
    if json_length is None:
        header_bytes = body
    else:
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
    start = len(header_bytes)
    inputs = []
    for index, spec in enumerate(header["inputs"]):
        tensor, start = _tensor(spec, index, body, start)
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


class V2DataPlane(DataPlane):
    """KServe's DataPlane with `parse_rest_request` for every raw REST body."""

    def decode_inference_request(self, body, headers, model_name):
        if isinstance(body, bytes):
            return parse_rest_request(
                body, headers.get(INFERENCE_CONTENT_LENGTH_HEADER), model_name
            )
        return super().decode_inference_request(body, headers, model_name)


def describe_validation_error(exc: RequestValidationError) -> str:
    """FastAPI's validation errors as one line: what is wrong, and where in the body."""
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "InferenceRequest")]
        if loc[:1] == ["bytes"]:  # the Union's raw-bytes alternative: noise, not a reason
            continue
        if error.get("type") == "json_invalid":
            return f"body is not valid JSON ({error.get('ctx', {}).get('error', 'decode error')})"
        problems.append(f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}")
    return "; ".join(problems[:3]) or "body is not a v2 inference request"


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a JSON body that is not a v2 request becomes a 400 with a reason."""
    message = f"malformed v2 request: {describe_validation_error(exc)}"
    return JSONResponse(status_code=400, content={"error": message})


class OneLineRequestErrors(logging.Filter):
    """Expected request failures as one log line, not an error with a stack trace: bad input
    and unknown models as warnings, an unavailable model as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InvalidInput | ModelNotFound | ModelNotReady):
            level = logging.ERROR if isinstance(exc, ModelNotReady) else logging.WARNING
            record.msg, record.args, record.exc_info = f"request failed: {exc}", (), None
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return True


class V2ModelServer(ModelServer):
    """`kserve.ModelServer` with the stricter decoder, the 400 handler and one-line error logs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.dataplane = V2DataPlane(model_registry=self.registered_models)
        from kserve import model_server

        app: FastAPI = model_server.app
        app.add_exception_handler(RequestValidationError, validation_error_handler)
        logging.getLogger("kserve").addFilter(OneLineRequestErrors())
