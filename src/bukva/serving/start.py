"""Start-up: the flag parser both servers share, and `serve`, which starts a stock
`kserve.ModelServer` with the corrections of this package.

What `serve` changes in KServe, each checked against the pinned SDK by
`tests/serving/test_kserve_upstream.py` (a test there fails once upstream behaves, and names
what to delete):

- the DataPlane (`bukva.serving.dataplanes`): ModelServer takes none, so its attribute is
  replaced before `start()` hands it to the REST and gRPC servers;
- where they listen: KServe binds REST to 0.0.0.0 and gRPC to [::] whatever the flags say
  (https://github.com/kserve/kserve/issues/4558); `--bind` chooses (`bind_servers`);
- the gRPC receive limit is `--max_request_bytes`: KServe's gRPC server reads its message
  limits from the parsed flags (`kserve.model_server.args`), not from ModelServer;
- the event loop (`use_event_loop`), the timing middleware (`without_timing_middleware`) and
  uvicorn's access log (see `serve`);
- the request-body limit (`bukva.serving.body_limit`), the 400 for a body that is not a v2
  request and one-line error logs (`bukva.serving.errors`), added to KServe's app and logger.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from fastapi.exceptions import RequestValidationError
from kserve import Model, ModelServer
from kserve.protocol.dataplane import DataPlane

from bukva.contract import MODEL_NAME
from bukva.serving.body_limit import MAX_REQUEST_BYTES, BodyLimit
from bukva.serving.errors import OneLineRequestErrors, validation_error_handler

ALL_INTERFACES = "0.0.0.0"


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


def grpc_address(bind: str, port: int) -> str:
    """The gRPC listen address for `--bind`: KServe's [::] (every interface, IPv4 and IPv6)
    for 0.0.0.0 or ::, else that one address."""
    if bind in (ALL_INTERFACES, "::", ""):
        return f"[::]:{port}"
    return f"[{bind}]:{port}" if ":" in bind else f"{bind}:{port}"


def bind_servers(bind: str) -> None:
    """Make `ModelServer.start` build REST and gRPC servers that listen on `bind`.

    KServe hard-codes `host="0.0.0.0"` in `RESTServer` and `[::]` in `GRPCServer.start`, and
    neither they nor ModelServer take an address
    (https://github.com/kserve/kserve/issues/4558; .../protocol/rest/server.py and
    .../protocol/grpc/server.py at
    https://github.com/kserve/kserve/tree/v0.20.0/python/kserve/kserve). ModelServer looks both
    classes up in `kserve.model_server` when it starts, so subclasses put there are the ones
    it builds; the gRPC one is KServe's `start` with the address chosen.
    """
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


def use_event_loop(choice: str) -> str:
    """Honour KServe's --event-loop flag ("auto": uvloop when installed, as its help says).

    KServe hands the choice to uvicorn only (https://github.com/kserve/kserve/pull/4971), and
    uvicorn sets its loop up in `Server.run`, which never runs: `ModelServer.start` calls
    `asyncio.run` itself and awaits `RESTServer.start`, that is uvicorn's `Server.serve`. So
    both servers ran on the plain asyncio loop. Setting the policy before that call puts REST
    and gRPC on uvloop. Returns the loop in use: "uvloop" or "asyncio".
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
    readiness probe answers only after it), inside the server's event loop.

    KServe offers no such hook (https://github.com/kserve/kserve/issues/4179): `Model.load`
    runs before the loop exists and `start_engine` beside the servers, not before them. KServe
    builds its app without a lifespan; Starlette's router keeps the one it has in
    `lifespan_context`, which this wraps.
    """
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

    KServe adds it whatever `--enable_latency_logging` says (`RESTServer._add_middlewares`,
    https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/protocol/rest/server.py).
    Per request it matches the route a second time to name it, reads the CPU clock twice and
    formats a `kserve.trace` INFO line: about 0.3 ms of the transformer's CPU, for a line that
    the default WARNING level drops. Starlette builds the middleware stack at the first
    request, after KServe added its middlewares; this filters the list then (Starlette's
    `build_middleware_stack`, wrapped). The latency histograms (`request_*_seconds`) come from
    the model, not from this middleware.
    """
    from timing_asgi import TimingMiddleware

    build = app.build_middleware_stack

    def build_without_timing():
        app.user_middleware = [m for m in app.user_middleware if m.cls is not TimingMiddleware]
        return build()

    app.build_middleware_stack = build_without_timing


def quiet_access_log() -> None:
    """Drop uvicorn's access lines (INFO), one per request, scrapes and health checks too.

    KServe's log config pins the `uvicorn.access` logger at INFO whatever KSERVE_LOGLEVEL says
    (`KSERVE_LOG_CONFIG`,
    https://github.com/kserve/kserve/blob/v0.20.0/python/kserve/kserve/logging.py), and the
    dictConfig calls that apply it reset any level set here; a filter outlives them. The
    request metrics carry what those lines said.
    """
    logging.getLogger("uvicorn.access").addFilter(lambda record: record.levelno >= logging.WARNING)


def serve(
    models: list[Model], args: argparse.Namespace, dataplane: type[DataPlane], **extra: Any
) -> None:
    """Start a `kserve.ModelServer` for `models` with the shared flags, the given DataPlane,
    the body limit, the 400 handler and one-line error logs, listening on `--bind`; returns
    when the server stops."""
    from kserve import model_server

    bind = getattr(args, "bind", ALL_INTERFACES)
    limit = getattr(args, "max_request_bytes", MAX_REQUEST_BYTES)
    # KServe's gRPC server reads its message limits from the parsed flags (`kserve.model_server
    # .args`, passed as `kwargs=vars(args)`), not from ModelServer: the request budget goes there.
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
        quiet_access_log()
    logging.getLogger("kserve").addFilter(OneLineRequestErrors())
    use_event_loop(args.event_loop)
    server.start(models)
