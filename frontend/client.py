"""A small KServe v2 REST client for the transformer: PNG in, top-k characters out.

The frontend image has no KServe and no torch, so this is plain httpx. The same base URL form
works locally (`http://127.0.0.1:8080`) and behind the cluster ingress
(`http://bukva.example/...`): requests go to `{base}/v2/models/{model}/infer`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx

from bukva.alphabet import DEFAULT_MODE, is_digit
from bukva.contract import ALTERNATIVE, MODE_PARAMETER, MODEL_NAME


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
    return Prediction(
        status=status[0],
        labels=tuple(c for c, _ in pairs),
        probabilities=tuple(p for _, p in pairs),
        uppercase_probability=uppercase[0],
        case_known=case_known[0],
        model_version=str(body.get("model_version") or ""),
        alternative=alternative[0],
        mode=mode,
    )


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

    def predict(self, png: bytes, mode: str = DEFAULT_MODE) -> Prediction:
        """Top-k characters for one PNG drawing, among the classes of `mode`.

        Raises:
            InferenceUnavailable: connection refused, timeout, or a 5xx/404 answer.
            InferenceError: a 4xx answer (the service's reason is in the message) or a
                response that does not follow the contract.
        """
        payload = {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(png).decode("ascii")],
                }
            ],
            "parameters": {MODE_PARAMETER: mode},
        }
        try:
            response = self._http.post(self.infer_url, json=payload)
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
        try:
            body = response.json()
        except ValueError:
            raise InferenceError("the response is not JSON") from None
        return parse_response(body, mode)

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
