"""Request body limit: a body over `max_bytes` gets 413 before any route sees it.

A declared Content-Length over the limit is refused without reading a byte. Otherwise a
request that has a body (Content-Length or Transfer-Encoding) is read here, counting the
streamed bytes, and refused as soon as it passes the limit; a body within it is handed to
the app as one message (the app reads whole bodies anyway, and they are small). Requests
without a body (most GETs) pass untouched. A 413 closes the connection: the rest of an
unread body is never parsed as a next request.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]


class BodyLimit:
    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length, streamed = None, False
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = None
            elif name == b"transfer-encoding":
                streamed = True
        if not streamed and not length:  # no body
            await self.app(scope, receive, send)
            return
        if length is not None and length > self.max_bytes:
            await self._refuse(send, f"declared {length} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, f"more than {self.max_bytes} bytes sent")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, what: str) -> None:
        detail = f"request body too large: {what}, the limit is {self.max_bytes} bytes"
        content = json.dumps({"error": "payload_too_large", "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(content)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})
