"""The request-body limit of both REST servers (`--max_request_bytes`), an ASGI middleware.

KServe has no limit of its own; `bukva.serving.start.serve` adds this one to KServe's app
(`kserve.model_server.app`, the app KServe serves and lets users add middlewares to:
https://github.com/kserve/kserve/pull/3757).
"""

from __future__ import annotations

from typing import Any

import orjson

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # 16 MiB: 64 canvas PNGs need ~1 MB, one 2 MB photo 3 MB


class BodyLimit:
    """ASGI middleware: a POST body over `limit` bytes is answered HTTP 400 before it is read
    (by its Content-Length) or as soon as it passes the limit (chunked, without one)."""

    def __init__(self, app: Any, limit: int):
        self.app, self.limit = app, limit

    async def _refuse(self, send: Any, size: str) -> None:
        body = orjson.dumps(
            {"error": f"request body is {size} bytes; the limit is {self.limit} per request"}
        )
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if length.isdigit() and int(length) > self.limit:
                return await self._refuse(send, length.decode())
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True  # chunked: read it here, up to the limit
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                return await self._refuse(send, f"more than {self.limit}")
            more = message.get("more_body", False)
        whole = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return whole

        return await self.app(scope, replay, send)
