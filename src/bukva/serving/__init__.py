"""KServe glue shared by the predictor and the transformer (needs the `kserve` extra).

Both servers are stock `kserve.ModelServer`s with the same few corrections, written here once,
one module per concern:

- `rest`: REST decoding that keeps binary tensors raw (KServe's turns them into lists, and
  PNGs into HTTP 500s);
- `dataplanes`: the servers' DataPlanes: those decoders, the served version in the v2
  metadata, JSON answers encoded once;
- `errors`: the 400 for a body that is not a v2 request, counted rejections, one-line logs of
  expected failures;
- `responses`: output tensors, the InferResponse, v2 metadata;
- `body_limit`: the request-body limit (ASGI middleware);
- `start`: the shared flags and `serve`, which starts a ModelServer with all of the above,
  listening where `--bind` says, on the event loop `--event-loop` says.

Where a correction works around KServe (the pinned SDK: `kserve` in requirements.lock, the
controller's version), its docstring links the upstream issue or code, and
`tests/serving/test_kserve_upstream.py` holds a test that fails once upstream behaves and names
what to delete. Imported only by the servers: the rest of the core never needs kserve. The
names below are what the servers and their tests use.
"""

from bukva.serving.dataplanes import FastTensorDataPlane, StrictDataPlane, VersionedDataPlane
from bukva.serving.errors import OneLineRequestErrors, invalid_input, validation_error_handler
from bukva.serving.responses import TOP1_BUCKETS, metadata, output, response, softmax
from bukva.serving.rest import fast_fp32_request, parse_rest_request
from bukva.serving.start import before_serving, serve, server_parser

__all__ = [
    "TOP1_BUCKETS",
    "FastTensorDataPlane",
    "OneLineRequestErrors",
    "StrictDataPlane",
    "VersionedDataPlane",
    "before_serving",
    "fast_fp32_request",
    "invalid_input",
    "metadata",
    "output",
    "parse_rest_request",
    "response",
    "serve",
    "server_parser",
    "softmax",
    "validation_error_handler",
]
