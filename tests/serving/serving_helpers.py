"""Helpers for the serving tests: real servers as subprocesses and a raw v2 gRPC client.

A module of its own (not conftest.py) so test modules can import it by a unique name.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # model/, transformer/, pipelines/ are top-level packages
    sys.path.insert(0, str(ROOT))
GLYPHS = ROOT.parent / "shared" / "data" / "rukopys" / "glyphs"
START_TIMEOUT_S = 120  # two busy cores: importing torch + kserve can take a while
MAX_BATCH = 8  # the test transformer's --max_batch_size (test_bad_input.py relies on it)
MAX_BYTES = 300_000  # and its --max_image_bytes (likewise)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One server subprocess with its HTTP and gRPC ports and a log file."""

    def __init__(self, module: str, args: list[str], log_dir: Path, env: dict | None = None):
        self.module, self.extra, self.env = module, args, env
        self.http_port, self.grpc_port = free_port(), free_port()
        self.log = log_dir / f"{module}-{self.http_port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def command(self) -> list[str]:
        ports = ["--http_port", str(self.http_port), "--grpc_port", str(self.grpc_port)]
        return [sys.executable, "-m", self.module, "--model_name", "bukva", *ports, *self.extra]

    def start(self, wait: bool = True) -> Server:
        env = os.environ | {"PYTHONUNBUFFERED": "1"} | (self.env or {})
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.module} not ready in {START_TIMEOUT_S}s: {self.tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the abrupt death the fault tests need."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


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


def grpc_infer(target: str, name: str, datatype: str, array: np.ndarray) -> GrpcResult:
    """One v2 gRPC ModelInfer call with raw contents, using KServe's generated stubs.

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
    request = pb.ModelInferRequest(model_name="bukva", inputs=[tensor], raw_input_contents=[raw])
    with grpc.insecure_channel(target) as channel:
        response = GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    return GrpcResult(
        {
            out.name: _decode(out.datatype, list(out.shape), data)
            for out, data in zip(response.outputs, response.raw_output_contents, strict=True)
        }
    )
