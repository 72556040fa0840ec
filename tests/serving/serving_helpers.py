"""Helpers for the serving tests: real servers as subprocesses and a raw v2 gRPC client.

A module of its own (not conftest.py) so test modules can import it by a unique name.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # model/, transformer/, pipelines/ are top-level packages
    sys.path.insert(0, str(ROOT))

from bukva.settings import Settings  # noqa: E402
from launch.processes import Process, free_port  # noqa: E402
from launch.serve import server_env, server_flags  # noqa: E402

MAX_BATCH = 8  # the test transformer's --max_batch_size (test_bad_input.py relies on it)
MAX_BYTES = 300_000  # and its --max_image_bytes (likewise)
MAX_REQUEST_PIXELS = 400_000  # its --max_request_pixels: 8 glyphs of 200x200 fit, 8 of 250x250 not
MAX_REQUEST_BYTES = 2_000_000  # its --max_request_bytes


class Server(Process):
    """One server subprocess (`launch.processes.Process`) on free HTTP and gRPC ports, with a
    log file; `start`, `stop` and `kill` (the abrupt death fault tests need) come from there.
    Log level and per-request trace are those `make serve` uses (`launch.serve`)."""

    def __init__(self, module: str, args: list[str], log_dir: Path, env: dict | None = None):
        settings = Settings.from_env()
        self.module, self.extra = module, [*server_flags(settings), *args]
        self.http_port, self.grpc_port = free_port(), free_port()
        log = log_dir / f"{module}-{self.http_port}.log"
        env = server_env(settings) | (env or {})
        super().__init__(module, self.command(), f"{self.url}/v2/health/ready", env, log, ROOT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        ports = ["--http_port", str(self.http_port), "--grpc_port", str(self.grpc_port)]
        return [sys.executable, "-m", self.module, "--model_name", "bukva", *ports, *self.extra]


class GrpcResult(dict):
    """Output arrays by name, read like tritonclient's InferResult."""

    def as_numpy(self, name: str) -> np.ndarray:
        return self[name]


def _decode(datatype: str, shape: list[int], raw: bytes) -> np.ndarray:
    if datatype == "BYTES":
        items, offset = [], 0
        while offset < len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            items.append(raw[offset + 4 : offset + 4 + size])
            offset += 4 + size
        return np.array(items, dtype=object).reshape(shape)
    dtype = {"FP32": "<f4", "BOOL": np.bool_, "UINT8": np.uint8}[datatype]
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def grpc_infer(
    target: str,
    name: str,
    datatype: str,
    array: np.ndarray,
    parameters: dict | None = None,
    outputs: list[str] | None = None,
) -> GrpcResult:
    """One v2 gRPC ModelInfer call with raw contents, using KServe's generated stubs;
    `parameters` (str or int values) become the request's InferParameters, `outputs` its
    requested outputs.

    (tritonclient's gRPC module registers the same proto names as KServe's, so the two cannot
    share a process; its HTTP client is used elsewhere.)
    """
    import grpc
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

    if datatype == "BYTES":
        raw = b"".join(struct.pack("<I", len(x)) + x for x in array.ravel())
    else:
        raw = np.ascontiguousarray(array).tobytes()
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=array.shape)
    params = {
        key: pb.InferParameter(string_param=value)
        if isinstance(value, str)
        else pb.InferParameter(int64_param=value)
        for key, value in (parameters or {}).items()
    }
    asked = [pb.ModelInferRequest.InferRequestedOutputTensor(name=o) for o in outputs or ()]
    request = pb.ModelInferRequest(
        model_name="bukva",
        inputs=[tensor],
        raw_input_contents=[raw],
        parameters=params,
        outputs=asked,
    )
    with grpc.insecure_channel(target) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    return GrpcResult(
        {
            out.name: _decode(out.datatype, list(out.shape), data)
            for out, data in zip(response.outputs, response.raw_output_contents, strict=True)
        }
    )
