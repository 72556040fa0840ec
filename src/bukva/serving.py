"""KServe glue shared by the predictor and the transformer (needs the `kserve` extra).

Both servers are stock `kserve.ModelServer`s with the same few corrections, written here once:

1. REST decoding. KServe 0.21 turns a binary-extension tensor into a Python list and back
   (`InferRequest.from_bytes`): slow for FP32 batches and fatal (HTTP 500) for BYTES that are not
   UTF-8, such as PNGs. `fast_fp32_request` (predictor) keeps binary FP32 inputs as raw
   bytes and leaves anything else to KServe; `parse_rest_request` (transformer) decodes every
   body itself and names what is wrong with a bad one.
2. FastAPI's 422 for a JSON body that is not a v2 request becomes a 400 with a reason.
3. Expected request failures (bad input, unknown model, model or predictor down) are logged as
   one line, not as an error with a stack trace.
4. Where they listen: KServe binds REST to 0.0.0.0 and gRPC to [::] whatever the flags say;
   `--bind` chooses (0.0.0.0 by default, what a pod needs; `launch.serve` passes 127.0.0.1).
5. A REST body larger than `--max_request_bytes` is refused (HTTP 400) before it is read, and
   the gRPC receive limit is the same figure.

Plus the parts both servers build alike: the flag parser, the server start, output tensors and
the InferResponse. Imported only by the servers: the rest of the core never needs kserve.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import InferInput, InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import RequestedOutput

from bukva.contract import MODEL_NAME, Tensor

# ---- REST decoding ---------------------------------------------------------------------------


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


class VersionedDataPlane(DataPlane):
    """KServe's DataPlane whose model metadata names the served version (v2 `versions`),
    which KServe 0.21 leaves out: from the model's `served_versions()` when it has one."""

    async def model_metadata(self, model_name: str) -> dict:
        metadata = await super().model_metadata(model_name)
        model = self.get_model_from_registry(model_name)
        served = getattr(model, "served_versions", None)
        versions = [v for v in (await served() if served else []) if v]
        return metadata | ({"versions": versions} if versions else {})


class StrictDataPlane(VersionedDataPlane):
    """KServe's DataPlane with `parse_rest_request` for every raw REST body (transformer), and
    JSON answers encoded once, by orjson: KServe 0.21 validates a JSON answer into its pydantic
    InferenceResponse and FastAPI then walks it again with `jsonable_encoder` (~0.2 ms a
    request, a tenth of the transformer's CPU); as bytes it takes the binary answers' path."""

    def decode_inference_request(self, body, headers, model_name):
        if isinstance(body, bytes):
            json_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
            return parse_rest_request(body, json_length, model_name)
        return super().decode_inference_request(body, headers, model_name)

    def encode(self, model_name, response, headers, req_attributes):
        body, response_headers = super().encode(model_name, response, headers, req_attributes)
        if isinstance(body, dict) and "content-type" not in response_headers:
            data = orjson.dumps(body)
            # KServe's endpoint drops the lowercase "content-type"/"content-length" it finds
            # here (they suit a binary answer); these spellings reach the HTTP answer.
            json_headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
            return data, response_headers | json_headers
        return body, response_headers


class FastTensorDataPlane(VersionedDataPlane):
    """KServe's DataPlane with `fast_fp32_request` tried first for raw REST bodies (predictor)."""

    def decode_inference_request(self, body, headers, model_name):
        if isinstance(body, bytes):
            json_length = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
            request = fast_fp32_request(body, json_length, model_name)
            if request is not None:
                return request
        return super().decode_inference_request(body, headers, model_name)


# ---- errors and logs ---------------------------------------------------------------------------


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
    and unknown models as warnings, an unavailable model as an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, InvalidInput | ModelNotFound | ModelNotReady):
            level = logging.ERROR if isinstance(exc, ModelNotReady) else logging.WARNING
            record.msg, record.args, record.exc_info = f"request failed: {exc}", (), None
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return True


# ---- responses and their metrics -------------------------------------------------------------

TOP1_BUCKETS = (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)  # top-1 probability histograms


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of [N, C] logits (numerically stable)."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def output(name: str, array: np.ndarray, datatype: str) -> InferOutput:
    """An output holding raw bytes: KServe then encodes it for JSON, binary REST or gRPC alike
    (an output holding a numpy array trips KServe 0.21's gRPC encoder)."""
    if datatype == "FP32":
        array = np.ascontiguousarray(array, dtype=np.float32)
    tensor = InferOutput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=True)
    return tensor


def response(
    request: InferRequest,
    model_name: str,
    outputs: list[InferOutput],
    model_version: str | None = None,
) -> InferResponse:
    """The answer to `request`: its id (or a new one), the model version that answered (v2
    `model_version`), its binary and requested-output wishes."""
    return InferResponse(
        response_id=request.id or str(uuid.uuid4()),
        model_name=model_name,
        model_version=model_version or None,
        infer_outputs=outputs,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=request.request_outputs,
    )


def metadata(tensors: Sequence[Tensor]) -> list[dict]:
    """Contract tensors as v2 model metadata."""
    return [t.metadata() for t in tensors]


# ---- flags and start -------------------------------------------------------------------------

ALL_INTERFACES = "0.0.0.0"
MAX_REQUEST_BYTES = 16 * 1024 * 1024  # 16 MiB: 64 canvas PNGs need ~1 MB, one 2 MB photo 3 MB


class BodyLimit:
    """ASGI middleware: a POST body over `limit` bytes is answered HTTP 400 before it is read
    (by its Content-Length) or as soon as it passes the limit (chunked, without one)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def _refuse(self, send: Any, size: str) -> None:
        body = orjson.dumps(
            {"error": f"request body is {size} bytes; the limit is {self.limit} per request"}
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.limit:
                return await self._refuse(send, length.decode())
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True  # chunked: read it here, up to the limit
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send, f"more than {self.limit}")
            more = message.get("more_body", False)
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return whole

        return await self.app(scope, replay, send)


def grpc_address(bind: str, port: int) -> str:
    """The gRPC listen address for `--bind`: KServe's [::] (every interface, IPv4 and IPv6)
    for 0.0.0.0 or ::, else that one address."""
    if bind in (ALL_INTERFACES, "::", ""):
        return f"[::]:{port}"
    return f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"


def bind_servers(bind: str) -> None:
    """Make `ModelServer.start` build REST and gRPC servers that listen on `bind` (KServe 0.21
    hard-codes 0.0.0.0 and [::])."""
    from grpc import aio
    from kserve import model_server
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
    from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
    from kserve.protocol.grpc.server import GRPCServer
    from kserve.protocol.grpc.servicer import InferenceServicer
    from kserve.protocol.rest.server import RESTServer

    class BoundRESTServer(RESTServer):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.config.host = bind  # read by uvicorn when it starts serving

    class BoundGRPCServer(GRPCServer):
        async def start(self, max_workers: int) -> None:  # KServe's, with the address chosen
            from concurrent import futures

            servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
            self._server = aio.server(
                futures.ThreadPoolExecutor(max_workers=max_workers),
                interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
                options=[
                    ("grpc.max_send_message_length", self._kwargs["grpc_max_send_message_length"]),
                    (
                        "grpc.max_receive_message_length",
                        self._kwargs["grpc_max_receive_message_length"],
                    ),
                ],
            )
            grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(
                servicer, self._server
            )
            self._server.add_insecure_port(grpc_address(bind, self._port))
            await self._server.start()
            await self._server.wait_for_termination()

    model_server.RESTServer = BoundRESTServer
    model_server.GRPCServer = BoundGRPCServer


def server_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """KServe's ModelServer flags (and transformer flags), the model name from the contract."""
    from kserve import model_server

    parser = argparse.ArgumentParser(
        prog=prog, parents=[model_server.parser], description=description
    )
    parser.set_defaults(model_name=MODEL_NAME)
    parser.add_argument(
        "--bind",
        default=ALL_INTERFACES,
        help="Address both servers (REST and gRPC) listen on: 0.0.0.0 (all interfaces, as a "
        "pod needs; the default) or one address such as 127.0.0.1 (what `make up` uses).",
    )
    parser.add_argument(
        "--max_request_bytes",
        type=int,
        default=MAX_REQUEST_BYTES,
        help="Largest request accepted: a bigger REST body is HTTP 400 before it is read, a "
        "bigger gRPC message RESOURCE_EXHAUSTED (sets --grpc_max_receive_message_length).",
    )
    return parser


def use_event_loop(choice: str) -> str:
    """Honour KServe's --event-loop flag ("auto": uvloop when installed, as its help says).

    KServe 0.21 hands the choice to uvicorn only, and uvicorn's loop setup never runs under
    `ModelServer.start` (which calls `asyncio.run` itself), so both servers ran on the plain
    asyncio loop. Setting the policy before that call puts REST and gRPC on uvloop.
    Returns the loop in use: "uvloop" or "asyncio".
    """
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())  # ModelServer asks for one before its run
    return "uvloop"


def before_serving(app: Any, start: Any) -> None:
    """Await `start()` in `app`'s lifespan start-up, before uvicorn opens the port (so a
    readiness probe answers only after it), inside the server's event loop."""
    from contextlib import asynccontextmanager

    previous = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner: Any):
        await start()
        async with previous(inner) as state:
            yield state

    app.router.lifespan_context = lifespan


def without_timing_middleware(app: Any) -> None:
    """Leave timing_asgi's TimingMiddleware, which KServe adds to every REST app, out of `app`.

    Per request it matches the route a second time to name it, reads the CPU clock twice and
    formats a `kserve.trace` INFO line: about 0.3 ms of the transformer's CPU, for a line that
    the default WARNING level drops. Starlette builds the middleware stack at the first
    request, after KServe added its middlewares; this filters the list then. The latency
    histograms (`request_*_seconds`) come from the model, not from this middleware.
    """
    from timing_asgi import TimingMiddleware

    build = app.build_middleware_stack

    def build_without_timing():
        app.user_middleware = [m for m in app.user_middleware if m.cls is not TimingMiddleware]
        return build()

    app.build_middleware_stack = build_without_timing


def serve(
    models: list[Model], args: argparse.Namespace, dataplane: type[DataPlane], **extra: Any
) -> None:
    """Start a `kserve.ModelServer` for `models` with the shared flags, the given REST decoder,
    the 400 handler and one-line error logs, listening on `--bind`; returns when the server
    stops."""
    bind = getattr(args, "bind", ALL_INTERFACES)
    limit = getattr(args, "max_request_bytes", MAX_REQUEST_BYTES)
    # KServe's gRPC server reads its message limits from the parsed flags (`kserve.model_server
    # .args`), not from ModelServer: the request budget goes there.
    from kserve import model_server

    model_server.args.grpc_max_receive_message_length = limit
    bind_servers(bind)
    server = ModelServer(
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        max_threads=args.max_threads,
        max_asyncio_workers=args.max_asyncio_workers,
        enable_grpc=args.enable_grpc,
        enable_docs_url=args.enable_docs_url,
        enable_latency_logging=args.enable_latency_logging,
        access_log_format=args.access_log_format,
        event_loop=args.event_loop,
        timeout_keep_alive=args.timeout_keep_alive,
        **extra,
    )
    server.dataplane = dataplane(model_registry=server.registered_models)
    model_server.app.add_middleware(BodyLimit, limit=limit)
    model_server.app.add_exception_handler(RequestValidationError, validation_error_handler)
    if not args.enable_latency_logging:  # the per-request trace (BUKVA_REQUEST_TRACE) is off
        without_timing_middleware(model_server.app)
        # KServe's log config pins uvicorn's access log at INFO whatever KSERVE_LOGLEVEL says:
        # one line per request (scrapes and health checks too). A filter outlives the
        # dictConfig calls that reset the level; the request metrics carry what it said.
        logging.getLogger("uvicorn.access").addFilter(
            lambda record: record.levelno >= logging.WARNING
        )
    logging.getLogger("kserve").addFilter(OneLineRequestErrors())
    use_event_loop(args.event_loop)
    server.start(models)
