"""A stand-in for the KServe transformer that speaks just enough v2 REST for the app's tests.

Used where the test is about the app's behaviour around the service (it is down, then comes
back on the same address), not about the model: the real servers start in seconds only when
the machine is idle.

It answers `POST /v2/models/bukva/infer` (JSON or the binary-data extension, as the app sends)
with the output tensors the contract in docs/architecture.md names, always predicting `answer`
with the twin `alternative` (so tests can check what the app shows), whatever the request's
`mode`; a drawing without ink is `blank`, and `model_input` (the 28x28 image, from
`bukva.preprocess`) comes when the request names it. `GET /v2/models/bukva` gives a version.
`fail_with` makes it answer an HTTP error instead; `delay_s` makes every answer slow.
The real transformer and predictor serve the other browser tests.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from bukva.preprocess import ImageError, decode_image, normalize

JSON_LENGTH = "Inference-Header-Content-Length"  # the v2 binary-data extension's header


class StubTransformer:
    """A v2 server on 127.0.0.1 (a free port) that records the requests it got."""

    def __init__(
        self,
        answer: tuple[str, ...] = ("а", "б", "в"),
        version: str = "7",
        port: int = 0,
        delay_s: float = 0.0,
        alternative: str = "",
    ):
        self.answer = answer
        self.alternative = alternative
        self.version = version
        self.delay_s = delay_s  # each answer waits this long (a slow service)
        self.fail_with: int | None = None
        self.requests: list[dict[str, Any]] = []  # their JSON (the header, when binary)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StubTransformer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def response(self, body: dict[str, Any], png: bytes) -> tuple[dict[str, Any], bytes]:
        """The answer's JSON and its binary data (`model_input`, when asked for as binary)."""
        try:
            seen = normalize(decode_image(png))
        except ImageError:  # blank (or not an image): nothing to answer
            seen = None
        blank = seen is None
        k = len(self.answer)
        answer = {
            "model_name": "bukva",
            "model_version": self.version,
            "outputs": [
                {"name": "label", "datatype": "BYTES", "shape": [1, k],
                 "data": ["" if blank else c for c in self.answer]},
                {"name": "probability", "datatype": "FP32", "shape": [1, k],
                 "data": [0.0] * k if blank else [0.9, 0.06, 0.04][:k]},
                {"name": "uppercase_probability", "datatype": "FP32", "shape": [1],
                 "data": [0.8]},
                {"name": "case_known", "datatype": "BOOL", "shape": [1], "data": [True]},
                {"name": "status", "datatype": "BYTES", "shape": [1],
                 "data": ["blank" if blank else "ok"]},
                {"name": "alternative", "datatype": "BYTES", "shape": [1],
                 "data": ["" if blank else self.alternative]},
            ],
        }  # fmt: skip
        asked = {o["name"]: o.get("parameters") or {} for o in body.get("outputs") or []}
        if not asked:
            return answer, b""
        model_input = np.zeros((1, 28, 28), "<f4") if blank else seen[None].astype("<f4")
        outputs = {o["name"]: o for o in answer["outputs"]}
        outputs["model_input"] = {
            "name": "model_input",
            "datatype": "FP32",
            "shape": [1, 28, 28],
            "data": model_input.ravel().tolist(),
        }
        answer["outputs"], raw = [], b""
        for name, parameters in asked.items():
            tensor = outputs[name]
            if parameters.get("binary_data"):
                data = np.asarray(tensor.pop("data"), "<f4").tobytes()
                tensor["parameters"] = {"binary_data_size": len(data)}
                raw += data
            answer["outputs"].append(tensor)
        return answer, raw

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any], raw: bytes = b"") -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if raw:
                    self.send_header(JSON_LENGTH, str(len(data)))
                self.send_header("Content-Length", str(len(data) + len(raw)))
                self.end_headers()
                self.wfile.write(data + raw)

            def do_GET(self) -> None:
                if self.path == "/v2/models/bukva":
                    self._send(200, {"name": "bukva", "versions": [stub.version]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                content = self.rfile.read(int(self.headers["Content-Length"]))
                length = int(self.headers.get(JSON_LENGTH) or len(content))
                body = json.loads(content[:length])
                stub.requests.append(body)
                if length < len(content):  # one BYTES element: its length, then the PNG
                    (size,) = struct.unpack_from("<I", content, length)
                    png = content[length + 4 : length + 4 + size]
                else:
                    png = base64.b64decode(body["inputs"][0]["data"][0])
                time.sleep(stub.delay_s)
                if stub.fail_with:
                    self._send(stub.fail_with, {"error": f"stub failure {stub.fail_with}"})
                elif self.path == "/v2/models/bukva/infer":
                    self._send(200, *stub.response(body, png))
                else:
                    self._send(404, {"error": f"no route {self.path}"})

        return Handler
