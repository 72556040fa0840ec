"""The transformer's client for the predictor: one FP32 batch out, two logit arrays back.

KServe's own transformer client would do, but it sends tensors as JSON lists, decodes binary
answers through Python lists, and leaves the error mapping to the caller. This one sends and
receives raw little-endian bytes (REST binary-data extension, or gRPC raw contents), keeps one
pooled keep-alive connection set, applies one end-to-end timeout, and reduces every failure to
two cases: `PredictorUnavailable` (down, slow, restarting: answer 503 and try again later)
and `PredictorError` (it answered, but not with what the contract promises).
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
import grpc
import numpy as np
import orjson
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from bukva.contract import GEOMETRY, INPUT, LABEL_LOGITS, UPPERCASE_LOGIT, infer_path

OUTPUTS = (LABEL_LOGITS, UPPERCASE_LOGIT)
MODEL_VERSION = "model_version"  # beside the logits: the version the predictor says answered
UNAVAILABLE_HTTP = {502, 503, 504}
UNAVAILABLE_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}


class PredictorUnavailable(RuntimeError):
    """The predictor did not answer in time or refused the connection."""


class PredictorError(RuntimeError):
    """The predictor answered with an error or with tensors the contract does not describe."""


class PredictorClient(Protocol):
    async def infer(
        self, batch: np.ndarray, geometry: np.ndarray | None = None
    ) -> dict[str, np.ndarray | str]: ...

    async def close(self) -> None: ...


def _inputs(batch: np.ndarray, geometry: np.ndarray | None) -> list[tuple[str, np.ndarray]]:
    """The predictor's inputs: the image batch, and the geometry when there is one."""
    return [(INPUT, batch)] + ([] if geometry is None else [(GEOMETRY, geometry)])


def _outputs(named: dict[str, tuple[list[int], bytes]]) -> dict[str, np.ndarray]:
    """Check the expected FP32 outputs are present and view their bytes as arrays."""
    try:
        return {
            name: np.frombuffer(named[name][1], dtype="<f4").reshape(named[name][0])
            for name in OUTPUTS
        }
    except (KeyError, ValueError) as exc:
        raise PredictorError(f"predictor answer lacks or garbles output {exc}") from None


class RestClient:
    """v2 REST with the binary-data extension over pooled keep-alive connections (aiohttp).

    aiohttp rather than httpx: profiling showed httpx's pure-Python HTTP/1.1 stack taking about
    40% of the transformer's CPU per request; aiohttp (a KServe dependency) parses in C.
    """

    def __init__(self, host: str, model_name: str, timeout: float, use_ssl: bool = False):
        scheme = "https" if use_ssl else "http"
        self.url = f"{scheme}://{host}{infer_path(model_name)}"
        self.model_name, self.timeout = model_name, timeout
        self._session: aiohttp.ClientSession | None = None

    def _connect(self) -> aiohttp.ClientSession:
        """Open the session on first use, inside the server's event loop (aiohttp needs it)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def infer(
        self, batch: np.ndarray, geometry: np.ndarray | None = None
    ) -> dict[str, np.ndarray | str]:
        specs, raw = [], b""
        for name, array in _inputs(batch, geometry):
            data = np.ascontiguousarray(array, dtype="<f4").tobytes()
            specs.append(
                {"name": name, "datatype": "FP32", "shape": list(array.shape)}
                | {"parameters": {"binary_data_size": len(data)}}
            )
            raw += data
        header = orjson.dumps({"inputs": specs, "parameters": {"binary_data_output": True}})
        headers = {
            INFERENCE_CONTENT_LENGTH_HEADER: str(len(header)),
            "content-type": "application/octet-stream",
        }
        for attempt in (1, 2):
            try:
                async with self._connect().post(self.url, data=header + raw, headers=headers) as r:
                    status, body = r.status, await r.read()
                    length = r.headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
                break
            except TimeoutError:
                raise PredictorUnavailable(f"predictor {self.url} did not answer in time") from None
            except aiohttp.ServerDisconnectedError:
                if attempt == 2:  # the first may be a pooled connection the predictor closed
                    raise PredictorUnavailable(f"predictor {self.url} disconnected") from None
            except aiohttp.ClientError as exc:
                raise PredictorUnavailable(
                    f"predictor {self.url} unreachable ({type(exc).__name__})"
                ) from None
        if status in UNAVAILABLE_HTTP:
            raise PredictorUnavailable(f"predictor answered {status}")
        if status != 200:
            text = body[:200].decode(errors="replace")
            raise PredictorError(f"predictor answered {status}: {text}")
        try:
            return self._parse(body, int(length) if length else len(body))
        except (ValueError, TypeError, AttributeError) as exc:  # orjson's error is a ValueError
            raise PredictorError(f"predictor answer is not a v2 response ({exc})") from None

    async def versions(self) -> list[str]:
        """The predictor's v2 metadata `versions` ([] when it does not say or cannot answer)."""
        url = self.url.removesuffix("/infer")
        try:
            async with self._connect().get(url) as r:
                body = orjson.loads(await r.read()) if r.status == 200 else {}
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return []
        return [str(v) for v in body.get("versions") or []]

    @staticmethod
    def _parse(body: bytes, length: int) -> dict[str, np.ndarray | str]:
        header = orjson.loads(body[:length])
        named, offset = {}, length
        for output in header.get("outputs", []):
            size = (output.get("parameters") or {}).get("binary_data_size")
            if size is None:  # a JSON-encoded tensor (a predictor ignoring binary_data_output)
                data = np.asarray(output.get("data", []), dtype="<f4").tobytes()
            else:
                data, offset = body[offset : offset + size], offset + size
            named[output.get("name")] = (output.get("shape"), data)
        return _outputs(named) | {MODEL_VERSION: str(header.get("model_version") or "")}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class GrpcClient:
    """v2 gRPC with raw tensor contents; reconnects within a second once the predictor is back."""

    def __init__(self, host: str, model_name: str, timeout: float):
        self.host, self.model_name, self.timeout = host, model_name, timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: GRPCInferenceServiceStub | None = None

    def _connect(self) -> GRPCInferenceServiceStub:
        """Open the channel on first use, inside the server's event loop (gRPC aio needs it)."""
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self.host,
                options=[
                    ("grpc.max_send_message_length", -1),
                    ("grpc.max_receive_message_length", -1),
                    ("grpc.initial_reconnect_backoff_ms", 200),
                    ("grpc.max_reconnect_backoff_ms", 1000),
                ],
            )
            self._stub = GRPCInferenceServiceStub(self._channel)
        return self._stub

    async def infer(
        self, batch: np.ndarray, geometry: np.ndarray | None = None
    ) -> dict[str, np.ndarray | str]:
        inputs = _inputs(batch, geometry)
        request = pb.ModelInferRequest(
            model_name=self.model_name,
            inputs=[
                pb.ModelInferRequest.InferInputTensor(
                    name=name, datatype="FP32", shape=list(array.shape)
                )
                for name, array in inputs
            ],
            raw_input_contents=[
                np.ascontiguousarray(array, dtype="<f4").tobytes() for _, array in inputs
            ],
        )
        try:
            response = await self._connect().ModelInfer(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            kind = PredictorUnavailable if exc.code() in UNAVAILABLE_GRPC else PredictorError
            raise kind(f"predictor {self.host}: {exc.code().name} {exc.details()}") from None
        raw = list(response.raw_output_contents)
        if len(raw) != len(response.outputs):  # contents instead of raw bytes
            raw = [np.asarray(o.contents.fp32_contents, "<f4").tobytes() for o in response.outputs]
        return _outputs(
            {
                out.name: (list(out.shape), data)
                for out, data in zip(response.outputs, raw, strict=True)
            }
        ) | {MODEL_VERSION: response.model_version}

    async def versions(self) -> list[str]:
        """The predictor's v2 metadata `versions` ([] when it does not say or cannot answer)."""
        try:
            answer = await self._connect().ModelMetadata(
                pb.ModelMetadataRequest(name=self.model_name), timeout=self.timeout
            )
        except grpc.aio.AioRpcError:
            return []
        return list(answer.versions)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


def make_client(
    protocol: str, host: str, model_name: str, timeout: float, use_ssl: bool = False
) -> PredictorClient:
    """The client for KServe's --predictor_protocol value (v2 or grpc-v2)."""
    if protocol == "v2":
        return RestClient(host, model_name, timeout, use_ssl)
    if protocol == "grpc-v2":
        return GrpcClient(host, model_name, timeout)
    raise ValueError(f"--predictor_protocol {protocol!r} is not supported; use v2 or grpc-v2")
