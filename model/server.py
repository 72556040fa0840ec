"""The predictor's `kserve.ModelServer`: stock KServe plus three small corrections.

1. A binary-extension FP32 tensor is kept as raw bytes. Stock KServe 0.21 turns it into a
   Python list and back (`InferRequest.from_bytes`), which cost more than the forward pass
   for large batches (a 256-image batch is 200 000 floats).
2. FastAPI's 422 for a JSON body that is not a v2 request becomes a 400 with a reason.
3. Expected request failures (bad input, unknown model, predictor down) are logged as one
   line, not as an error with a stack trace.

The transformer has the same corrections in `transformer/v2.py` (plus BYTES handling); the
two components share no code but bukva's core, so these few lines are kept in step by hand.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import InferInput, InferRequest, ModelServer
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.protocol.dataplane import DataPlane


def fast_fp32_request(body: bytes, json_length: str | None, model_name: str) -> InferRequest | None:
    """An InferRequest holding the raw bytes of a lone binary FP32 input; None for anything
    else (which then takes KServe's general path and its error messages)."""
    try:
        length = int(json_length or "")
        header = orjson.loads(body[:length])
        (spec,) = header["inputs"]
        size = spec["parameters"]["binary_data_size"]
        shape = [int(s) for s in spec["shape"]]
    except (ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        return None
    if spec.get("datatype") != "FP32" or "data" in spec or length + size != len(body):
        return None
    tensor = InferInput(spec.get("name", ""), shape, "FP32", parameters=spec["parameters"])
    tensor._raw_data = body[length:]
    parameters = header.get("parameters")
    return InferRequest(
        model_name=model_name,
        infer_inputs=[tensor],
        request_id=header.get("id"),
        parameters=parameters if isinstance(parameters, dict) else None,
    )


class FastTensorDataPlane(DataPlane):
    """KServe's DataPlane with `fast_fp32_request` tried first for raw REST bodies."""

    def decode_inference_request(self, body, headers, model_name):
        if isinstance(body, bytes):
            json_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
            request = fast_fp32_request(body, json_length, model_name)
            if request is not None:
                return request
        return super().decode_inference_request(body, headers, model_name)


async def validation_error_handler(_request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a JSON body that is not a v2 request becomes a 400 with a reason."""
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "InferenceRequest")]
        if loc[:1] == ["bytes"]:  # the Union's raw-bytes alternative: noise, not a reason
            continue
        if error.get("type") == "json_invalid":
            problems = ["body is not valid JSON"]
            break
        problems.append(f"{'.'.join(loc) or 'body'}: {error.get('msg', 'invalid')}")
    message = "malformed v2 request: " + ("; ".join(problems[:3]) or "not a v2 request")
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


class PredictorServer(ModelServer):
    """`kserve.ModelServer` with the fast FP32 decoder, the 400 handler and one-line error logs."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.dataplane = FastTensorDataPlane(model_registry=self.registered_models)
        from kserve import model_server

        model_server.app.add_exception_handler(RequestValidationError, validation_error_handler)
        logging.getLogger("kserve").addFilter(OneLineRequestErrors())
