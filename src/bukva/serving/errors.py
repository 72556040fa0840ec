"""Request errors: the 400 for a body that is not a v2 request, counted rejections, and
expected failures logged as one line.

Two KServe behaviours corrected here (`tests/serving/test_kserve_upstream.py` fails once
either changes upstream):

- FastAPI validates a JSON body against KServe's pydantic InferenceRequest and answers a
  mismatch 422 with pydantic's error list; KServe registers no handler for
  RequestValidationError (`RESTServer._add_exception_handlers`,
  https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/protocol/rest/server.py).
  `validation_error_handler` makes it the 400 with one reason every other bad request gets.
- KServe's exception handlers and its gRPC interceptor log every failure at ERROR with its
  stack trace (`logger.error("Exception:", exc_info=exc)`,
  https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/errors.py and
  .../protocol/grpc/interceptors.py), bad input included. `OneLineRequestErrors` turns the
  expected ones into one line.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady


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


async def validation_error_handler(_request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a JSON body that is not a v2 request becomes a 400 with a reason."""
    message = f"malformed v2 request: {describe_validation_error(exc)}"
    return JSONResponse(status_code=400, content={"error": message})


def invalid_input(counter: Any, reason: str, message: str) -> InvalidInput:
    """Count a rejected request (a Prometheus counter labelled by `reason`) and build the
    400 / INVALID_ARGUMENT error for it."""
    counter.labels(reason=reason).inc()
    return InvalidInput(message)


class OneLineRequestErrors(logging.Filter):
    """Expected request failures as one log line, not an error with a stack trace: bad input
    and unknown models as warnings, an unavailable model as an error. Installed on the
    `kserve` logger by `bukva.serving.start.serve`."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InvalidInput | ModelNotFound | ModelNotReady):
            level = logging.ERROR if isinstance(exc, ModelNotReady) else logging.WARNING
            record.msg, record.args, record.exc_info = f"request failed: {exc}", (), None
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return True
