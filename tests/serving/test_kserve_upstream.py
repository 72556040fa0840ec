"""The KServe behaviours `bukva.serving` works around, asserted against the pinned SDK.

Each test states a gap of the KServe Python SDK in requirements.lock, as that SDK behaves
today. When an upgrade closes a gap, its test fails, and its message names the correction in
`bukva.serving` (or the transformer) to delete: the workaround has outlived its reason. The
corrections themselves are tested through the real servers (test_servers.py, test_bad_input.py,
test_faults.py, test_inputs.py); these tests need no server, only KServe's own classes, wired
as `kserve.ModelServer` wires them.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import inspect
import logging
import re
import struct
import subprocess
import sys
import textwrap

import httpx
import numpy as np
import orjson
import pytest
from fastapi import FastAPI
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.errors import InvalidInput, ModelNotReady
from kserve.model_repository import ModelRepository
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.model_repository_extension import ModelRepositoryExtension
from kserve.protocol.rest.server import RESTServer
from kserve.protocol.rest.v2_datamodels import InferenceRequest, InferenceResponse
from kserve.protocol.rest.v2_endpoints import V2Endpoints
from serving_helpers import ROOT
from starlette.requests import Request
from starlette.responses import Response

from bukva.serving import StrictDataPlane

STALE = "KServe no longer does this: delete {what} (and this test)"


class Echo(Model):
    """A ready model answering one FP32 output, as a plain KServe model would."""

    def __init__(self, name: str = "m"):
        super().__init__(name)
        self.ready = True

    async def predict(self, payload, headers=None):
        out = InferOutput("y", [2], "FP32", data=[1.0, 2.0])
        return InferResponse(response_id="1", model_name=self.name, infer_outputs=[out])


def registry(model: Model) -> ModelRepository:
    repository = ModelRepository()
    repository.update(model)
    return repository


def rest_server(dataplane: DataPlane) -> RESTServer:
    """KServe's REST server as `ModelServer.start` builds it."""
    extension = ModelRepositoryExtension(model_registry=dataplane.model_registry)
    return RESTServer("kserve.model_server:app", dataplane, extension, http_port=0)


def rest_app(dataplane: DataPlane) -> FastAPI:
    """KServe's REST app as `RESTServer.create_application` builds it, on a fresh FastAPI app
    (that method fills the process-wide `kserve.model_server.app`)."""
    server, app = rest_server(dataplane), FastAPI()
    server._add_middlewares(app)
    server._register_endpoints(app)
    server._add_exception_handlers(app)
    return app


async def post(app: FastAPI, path: str, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kserve") as client:
        return await client.post(path, content=body, headers={"content-type": "application/json"})


def binary_request(name: str, datatype: str, raw: bytes) -> tuple[bytes, int]:
    """A v2 REST body with one binary-extension input, and its JSON length."""
    spec = {"name": name, "shape": [1], "datatype": datatype}
    if datatype == "FP32":
        spec["shape"] = [len(raw) // 4]
    header = orjson.dumps({"inputs": [spec | {"parameters": {"binary_data_size": len(raw)}}]})
    return header + raw, len(header)


def test_these_tests_describe_the_pinned_sdk():
    locked = re.search(r"^kserve==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert locked and importlib.metadata.version("kserve") == locked[1], (
        "the installed KServe is not the locked one: `make env`"
    )


# ---- REST decoding (bukva.serving.rest) -------------------------------------------------------


def test_kserve_decodes_binary_bytes_as_utf8():
    """KServe's REST decoder turns binary BYTES into text: a PNG fails (HTTP 500)."""
    png = b"\x89PNG\r\n\x1a\n\xff\xfe"
    body, length = binary_request("image", "BYTES", struct.pack("<I", len(png)) + png)
    with pytest.raises(Exception, match="UTF-8"):
        InferRequest.from_bytes(body, length, "m")
    # else: delete parse_rest_request and StrictDataPlane.decode_inference_request
    # (bukva/serving/rest.py, dataplanes.py)


def test_kserve_decodes_binary_fp32_into_a_list():
    """KServe's REST decoder turns a binary FP32 tensor into a Python list of floats."""
    floats = np.arange(6, dtype=np.float32)
    body, length = binary_request("image", "FP32", floats.tobytes())
    tensor = InferRequest.from_bytes(body, length, "m").inputs[0]
    assert isinstance(tensor.data, list) and tensor._raw_data is None, STALE.format(
        what="fast_fp32_request and FastTensorDataPlane (bukva/serving/rest.py, dataplanes.py)"
    )


# ---- DataPlanes (bukva.serving.dataplanes) ----------------------------------------------------


def test_kserve_metadata_names_no_versions():
    metadata = asyncio.run(DataPlane(model_registry=registry(Echo())).model_metadata("m"))
    assert "versions" not in metadata, STALE.format(what="VersionedDataPlane (dataplanes.py)")


def test_kserve_validates_a_json_answer_into_its_pydantic_model():
    """KServe's v2 endpoint turns a JSON answer into an InferenceResponse, which FastAPI then
    encodes field by field; only a bytes answer goes out as it is."""

    async def infer(dataplane: DataPlane):
        endpoints = V2Endpoints(dataplane, ModelRepositoryExtension(dataplane.model_registry))
        request = Request({"type": "http", "method": "POST", "headers": []})
        body = InferenceRequest.model_validate(
            {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
        )
        return await endpoints.infer(request, Response(), "m", body)

    assert isinstance(
        asyncio.run(infer(DataPlane(model_registry=registry(Echo())))), (InferenceResponse)
    ), STALE.format(what="StrictDataPlane.encode (dataplanes.py)")
    # the correction's path: bytes, sent as they are, with the header spelling that survives
    answer = asyncio.run(infer(StrictDataPlane(model_registry=registry(Echo()))))
    assert isinstance(answer, Response) and answer.headers["content-type"] == "application/json"


def test_modelserver_takes_no_dataplane():
    parameters = inspect.signature(ModelServer.__init__).parameters
    assert not [p for p in parameters if "plane" in p], STALE.format(
        what="the `server.dataplane` assignment in bukva.serving.start.serve: pass the DataPlane"
    )


# ---- errors and logs (bukva.serving.errors) ---------------------------------------------------


def test_kserve_answers_a_body_that_is_not_a_v2_request_422():
    app = rest_app(DataPlane(model_registry=registry(Echo())))
    answer = asyncio.run(post(app, "/v2/models/m/infer", b'{"inputs": 3}'))
    assert answer.status_code == 422, STALE.format(what="validation_error_handler (errors.py)")


class Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


class Context:
    """A gRPC servicer context that records what `abort` was called with."""

    def __init__(self):
        self.aborted = None

    async def abort(self, code, details):
        self.aborted = (code, details)


def test_kserve_logs_bad_input_as_an_error_with_its_stack_trace():
    from kserve.errors import invalid_input_handler

    records, logger = Records(), logging.getLogger("kserve")
    logger.addHandler(records)
    try:
        asyncio.run(invalid_input_handler(None, InvalidInput("bad tensor")))
        grpc = ExceptionToStatusInterceptor()
        asyncio.run(grpc.handle_exception(InvalidInput("bad tensor"), None, Context(), "Infer"))
    finally:
        logger.removeHandler(records)
    assert len(records.records) == 2
    assert all(r.levelno == logging.ERROR and r.exc_info for r in records.records), STALE.format(
        what="OneLineRequestErrors (errors.py)"
    )


def test_kserve_grpc_cannot_map_model_not_ready():
    """KServe's gRPC interceptor reads `.reason`, which its own ModelNotReady lacks: the
    AttributeError makes the call UNKNOWN instead of UNAVAILABLE."""
    context = Context()
    grpc = ExceptionToStatusInterceptor()
    with pytest.raises(AttributeError, match="reason"):
        asyncio.run(grpc.handle_exception(ModelNotReady("m", "down"), None, context, "Infer"))
    assert context.aborted is None
    # else: delete transformer.model.PredictorDown's `.reason` (raise ModelNotReady itself)


# ---- responses (bukva.serving.responses) ------------------------------------------------------


def test_kserve_grpc_encoder_trips_on_a_numpy_output():
    out = InferOutput("y", [3], "FP32", data=np.ones(3, dtype=np.float32))
    answer = InferResponse(
        response_id="1", model_name="m", infer_outputs=[out], use_binary_outputs=True
    )
    with pytest.raises(ValueError, match="ambiguous"):
        answer.to_grpc()
    # else: `output` (responses.py) may hand KServe the array instead of its bytes


# ---- start-up (bukva.serving.start) -----------------------------------------------------------


def test_kserve_listens_on_every_interface_and_takes_no_address():
    assert rest_server(DataPlane(model_registry=registry(Echo()))).config.host == "0.0.0.0"
    assert 'f"[::]:{self._port}"' in inspect.getsource(GRPCServer.start)
    for cls in (ModelServer, RESTServer, GRPCServer):
        parameters = inspect.signature(cls.__init__).parameters
        assert not {"host", "bind", "address", "listen_address"} & set(parameters), STALE.format(
            what=f"bind_servers (start.py): {cls.__name__} takes an address"
        )


# The sha256 of KServe's GRPCServer.start, which bind_servers copies with the address changed.
GRPC_START_SHA256 = "9e051a0294b4a6cc3c09365a1155f2cf88914e3c62d9b56d7e7abcc03579d5b0"


def test_the_copied_grpc_start_matches_kserve():
    source = textwrap.dedent(inspect.getsource(GRPCServer.start))
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == GRPC_START_SHA256, (
        "KServe's GRPCServer.start changed: bring BoundGRPCServer.start (bukva/serving/start.py) "
        f"in line with it, then record its new sha256 here ({digest})"
    )


def test_kserve_takes_the_grpc_limits_from_its_global_flags_only():
    parameters = inspect.signature(ModelServer.__init__).parameters
    assert "grpc_max_receive_message_length" not in parameters, STALE.format(
        what="the `model_server.args.grpc_max_receive_message_length` write in serve (start.py)"
    )


def test_kserve_always_adds_its_timing_middleware():
    from timing_asgi import TimingMiddleware

    app = rest_app(DataPlane(model_registry=registry(Echo())))
    assert "enable_latency_logging" not in inspect.signature(RESTServer.__init__).parameters
    assert TimingMiddleware in [m.cls for m in app.user_middleware], STALE.format(
        what="without_timing_middleware (start.py)"
    )


def test_kserve_pins_the_access_log_at_info():
    from kserve.constants.constants import KSERVE_LOGLEVEL
    from kserve.logging import KSERVE_LOG_CONFIG

    loggers = KSERVE_LOG_CONFIG["loggers"]
    assert loggers["kserve"]["level"] == KSERVE_LOGLEVEL  # KServe's own follow the variable
    assert loggers["uvicorn.access"]["level"] == "INFO", STALE.format(
        what="quiet_access_log (start.py)"
    )


PROBE = """
import asyncio, os
from kserve import Model, ModelServer
from bukva.serving.start import use_event_loop

class Probe(Model):  # an engine: ModelServer awaits start_engine() beside its servers
    def __init__(self):
        super().__init__("probe")
        self.ready, self.engine = True, True

    async def start_engine(self):
        print(type(asyncio.get_running_loop()).__module__, flush=True)
        os._exit(0)

if {corrected}:
    use_event_loop("uvloop")
ModelServer(http_port=0, enable_grpc=False, event_loop="uvloop").start([Probe()])
"""


def loop_of_a_model_server(corrected: bool) -> str:
    """The module of the event loop a ModelServer started with `event_loop="uvloop"` runs on,
    with or without `use_event_loop` first."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(corrected=corrected)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_kserve_serves_on_asyncio_whatever_event_loop_says():
    pytest.importorskip("uvloop")
    assert loop_of_a_model_server(corrected=False) == "asyncio.unix_events", STALE.format(
        what="use_event_loop (start.py)"
    )
    assert loop_of_a_model_server(corrected=True) == "uvloop"  # the correction
