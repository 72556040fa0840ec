"""A stand-in for the KServe transformer that speaks just enough v2 REST for the app's tests.

Used where the test is about the app's behaviour around the service (it is down, then comes
back on the same address), not about the model: the real servers start in seconds only when
the machine is idle.

It answers `POST /v2/models/bukva/infer` with the output tensors the contract in
docs/architecture.md names, always predicting `answer` with the twin `alternative` (so tests
can check what the app shows), whatever the request's `mode`,
and `GET /v2/models/bukva` with a version. `fail_with` makes it answer an HTTP error instead;
`delay_s` makes every answer slow.
The real transformer and predictor serve the other browser tests.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
        self.requests: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> StubTransformer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def response(self, body: dict[str, Any]) -> dict[str, Any]:
        image = body["inputs"][0]
        png = base64.b64decode(image["data"][0])
        blank = not png.startswith(b"\x89PNG")
        k = len(self.answer)
        return {
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v2/models/bukva":
                    self._send(200, {"name": "bukva", "versions": [stub.version]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append(body)
                time.sleep(stub.delay_s)
                if stub.fail_with:
                    self._send(stub.fail_with, {"error": f"stub failure {stub.fail_with}"})
                elif self.path == "/v2/models/bukva/infer":
                    self._send(200, stub.response(body))
                else:
                    self._send(404, {"error": f"no route {self.path}"})

        return Handler
