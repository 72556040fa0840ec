"""A loopback stand-in for the two MLflow REST endpoints `bukva.registry` reads, answering as
MLflow 3 does (the same JSON, the same error codes; `tests/services` checks the real server):

    GET /api/2.0/mlflow/registered-models/alias?name=&alias=
    GET /api/2.0/mlflow/model-versions/search?filter=name = '<name>'&max_results=&page_token=

It pages the search `page_size` versions at a time, so a reader that ignores
`next_page_token` misses versions.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def mlflow_rest(
    versions: list[dict], aliases: dict[str, str], name: str = "bukva-cnn", page_size: int = 2
) -> Iterator[str]:
    """Serve `versions` (REST JSON, tags as key/value lists) of `name` with `aliases`
    (alias -> version); yields the server's base URL."""

    class Registry(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
            if path == "/api/2.0/mlflow/registered-models/alias":
                self.alias(params)
            elif path == "/api/2.0/mlflow/model-versions/search":
                self.search(params)
            else:
                self.answer(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": path})

        def alias(self, params: dict[str, str]) -> None:
            if params.get("name") != name:
                message = f"Registered Model with name={params.get('name')} not found"
                self.answer(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message})
            elif params.get("alias") not in aliases:
                message = f"Registered model alias {params.get('alias')} not found."
                self.answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": message})
            else:
                number = aliases[params["alias"]]
                found = next(v for v in versions if v["version"] == number)
                self.answer(200, {"model_version": found})

        def search(self, params: dict[str, str]) -> None:
            held = versions if params.get("filter") == f"name = '{name}'" else []
            start = int(params.get("page_token") or 0)
            page = {"model_versions": held[start : start + page_size]}
            if start + page_size < len(held):
                page["next_page_token"] = str(start + page_size)
            self.answer(200, page)

        def answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
