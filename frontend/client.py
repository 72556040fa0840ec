"""A small KServe v2 REST client for the transformer: PNG in, top-k characters out.

The frontend image has no KServe and no torch, so this is plain httpx. The same base URL form
works locally (`http://127.0.0.1:8080`) and behind the cluster ingress
(`http://bukva.example/...`): requests go to `{base}/v2/models/{model}/infer`.

The PNG travels as it came from the canvas, in the v2 binary-data extension (raw bytes after
the JSON header: no base64 step on either side). Asked for, the transformer also returns the
28x28 image the model saw (`model_input`, binary too): the app's preview, so the app never
decodes or normalises a drawing itself.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from bukva.alphabet import DEFAULT_MODE, IMAGE_SIZE, is_digit
from bukva.contract import (
    ALTERNATIVE,
    CASE_KNOWN,
    INPUT,
    LABEL,
    MODE_PARAMETER,
    MODEL_INPUT,
    MODEL_NAME,
    PROBABILITY,
    STATUS,
    UPPERCASE_PROBABILITY,
)

# The v2 binary-data extension's header: the length of the JSON part of a body.
JSON_LENGTH = "Inference-Header-Content-Length"
# What the answer needs; a request that names its outputs gets only those (v2), so the list
# that adds `model_input` names these too.
ANSWER_OUTPUTS = (LABEL, PROBABILITY, UPPERCASE_PROBABILITY, CASE_KNOWN, STATUS, ALTERNATIVE)


class InferenceUnavailable(RuntimeError):
    """The inference service cannot be reached or is not ready (retrying later may help)."""


class InferenceError(RuntimeError):
    """The inference service answered, but not with a usable prediction."""


@dataclass(frozen=True)
class Prediction:
    """The transformer's answer for one drawing."""

    status: str  # "ok", or "blank" when the service saw no ink
    labels: tuple[str, ...]  # top-k class characters, most likely first
    probabilities: tuple[float, ...]
    uppercase_probability: float
    case_known: bool  # whether the model's case answer means anything for the top-1 class
    model_version: str = ""
    alternative: str = ""  # the top-1's digit/letter twin when both are likely, else ""
    mode: str = DEFAULT_MODE  # the mode the answer was asked in (`bukva.alphabet.MODES`)
    # The drawing as the model saw it, float32 [28, 28] (0 paper, 1 ink), when asked for.
    model_input: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def top(self) -> str:
        return self.labels[0] if self.labels else ""

    @property
    def uppercase(self) -> bool | None:
        """The model's case for the top-1 class; None for digits and where case is unknown."""
        if not self.case_known or not self.top or is_digit(self.top):
            return None
        return self.uppercase_probability >= 0.5


def _output(outputs: dict[str, dict[str, Any]], name: str) -> list[Any]:
    if name not in outputs:
        raise InferenceError(f"the response has no {name!r} output (got {sorted(outputs)})")
    return list(outputs[name].get("data") or [])


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def parse_response(body: dict[str, Any], mode: str = DEFAULT_MODE) -> Prediction:
    """The first image's prediction from a v2 response body (the contract in architecture.md).
    `alternative` may be missing (a transformer from before twins): no twin, then.

    Raises:
        InferenceError: the body lacks an output or its shapes do not match.
    """
    outputs = {o.get("name"): o for o in body.get("outputs", []) if isinstance(o, dict)}
    labels = [_text(v) for v in _output(outputs, "label")]
    probabilities = [float(v) for v in _output(outputs, "probability")]
    status = [_text(v) for v in _output(outputs, "status")]
    uppercase = [float(v) for v in _output(outputs, "uppercase_probability")]
    case_known = [bool(v) for v in _output(outputs, "case_known")]
    shape = outputs["label"].get("shape") or [1, len(labels)]
    k = int(shape[-1]) if len(shape) > 1 else len(labels)
    if not status or not uppercase or not case_known or len(probabilities) != len(labels):
        raise InferenceError("the response's outputs do not describe one image")
    # Blank images have empty labels; keep only real answers.
    pairs = [(c, p) for c, p in zip(labels[:k], probabilities[:k], strict=True) if c]
    alternative = [_text(v) for v in (outputs.get(ALTERNATIVE) or {}).get("data") or [""]]
    seen = None
    if MODEL_INPUT in outputs:
        seen = np.asarray(outputs[MODEL_INPUT].get("data"), dtype=np.float32)
        if seen.size != len(status) * IMAGE_SIZE * IMAGE_SIZE:
            raise InferenceError(f"the {MODEL_INPUT!r} output is not 28x28 per image")
        seen = seen.reshape(len(status), IMAGE_SIZE, IMAGE_SIZE)[0]
    return Prediction(
        status=status[0],
        labels=tuple(c for c, _ in pairs),
        probabilities=tuple(p for _, p in pairs),
        uppercase_probability=uppercase[0],
        case_known=case_known[0],
        model_version=str(body.get("model_version") or ""),
        alternative=alternative[0],
        mode=mode,
        model_input=seen,
    )


def binary_request(png: bytes, mode: str, model_input: bool) -> tuple[bytes, dict[str, str]]:
    """A v2 request body in the binary-data extension (one BYTES element: its 4-byte
    little-endian length, then the PNG) and its headers; with `model_input`, the answer's
    outputs named, `model_input` as binary data."""
    header: dict[str, Any] = {
        "inputs": [
            {
                "name": INPUT,
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": 4 + len(png)},
            }
        ],
        "parameters": {MODE_PARAMETER: mode},
    }
    if model_input:
        header["outputs"] = [{"name": name} for name in ANSWER_OUTPUTS] + [
            {"name": MODEL_INPUT, "parameters": {"binary_data": True}}
        ]
    head = json.dumps(header, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/octet-stream", JSON_LENGTH: str(len(head))}
    return head + struct.pack("<I", len(png)) + png, headers


def read_body(response: httpx.Response) -> dict[str, Any]:
    """A v2 response body as JSON, binary-data outputs (FP32 only: `model_input`) read into
    their `data`.

    Raises:
        InferenceError: not JSON, or binary data that does not add up.
    """
    content, length = response.content, response.headers.get(JSON_LENGTH)
    try:
        body = json.loads(content[: int(length)] if length else content)
    except ValueError:
        raise InferenceError("the response is not JSON") from None
    if not isinstance(body, dict):
        raise InferenceError("the response is not a JSON object")
    start = int(length or len(content))  # no binary data: every output's data is in the JSON
    for tensor in body.get("outputs") or []:
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            continue
        if (
            not isinstance(size, int)
            or tensor.get("datatype") != "FP32"
            or size % 4
            or start + size > len(content)
        ):
            raise InferenceError(f"unreadable binary output {tensor.get('name')!r}")
        tensor["data"] = np.frombuffer(content, "<f4", size // 4, start)
        start += size
    return body


class InferenceClient:
    """Calls the transformer; one pooled HTTP connection, reused across page reruns."""

    def __init__(
        self,
        base_url: str,
        model_name: str = MODEL_NAME,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.model_name = model_name
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout_s, connect=2.0), transport=transport
        )

    @property
    def infer_url(self) -> str:
        return f"{self.base_url}/v2/models/{self.model_name}/infer"

    def predict(
        self, png: bytes, mode: str = DEFAULT_MODE, model_input: bool = False
    ) -> Prediction:
        """Top-k characters for one PNG drawing, among the classes of `mode`; with
        `model_input`, also the 28x28 image the model saw (`Prediction.model_input`).

        Raises:
            InferenceUnavailable: connection refused, timeout, or a 5xx/404 answer.
            InferenceError: a 4xx answer (the service's reason is in the message) or a
                response that does not follow the contract.
        """
        content, headers = binary_request(png, mode, model_input)
        try:
            response = self._http.post(self.infer_url, content=content, headers=headers)
        except httpx.TimeoutException:
            raise InferenceUnavailable(f"{self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise InferenceUnavailable(f"cannot reach {self.base_url} ({exc})") from None
        except httpx.InvalidURL as exc:
            raise InferenceUnavailable(f"{self.base_url} is not a usable URL ({exc})") from None
        if response.status_code >= 500 or response.status_code in (404, 503):
            raise InferenceUnavailable(
                f"{self.infer_url} answered HTTP {response.status_code}: {_reason(response)}"
            )
        if response.status_code >= 400:
            raise InferenceError(f"HTTP {response.status_code}: {_reason(response)}")
        return parse_response(read_body(response), mode)

    def model_version(self) -> str:
        """The served model's version from the v2 metadata endpoint ("" when not known)."""
        try:
            response = self._http.get(f"{self.base_url}/v2/models/{self.model_name}")
            if not response.is_success:
                return ""
            versions = response.json().get("versions") or []
        except (httpx.HTTPError, ValueError, AttributeError):
            return ""
        return str(versions[0]) if versions else ""

    def close(self) -> None:
        self._http.close()


def _reason(response: httpx.Response) -> str:
    """The error text a KServe server puts in its JSON body, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    return str(body)[:200]
