"""Request bodies are small here: refuse anything over the limit with a 413 in the error shape.

A declared Content-Length over the limit is refused before a byte is read; a body that grows
past it while streaming stops being read at once (the endpoint's read raises).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body

TOO_LARGE = "Request body larger than {limit} bytes"


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = TOO_LARGE.format(limit=self.max_bytes)
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = JSONResponse(error_body(message, "payload_too_large"), 413)
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, message)
            return incoming

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
