"""ASGI middleware of the server: a body size limit, and a 500 that keeps the connection open."""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mechscope.server.errors import json_error

log = logging.getLogger("mechscope.server")


class BodyLimit:
    """413 for a body over ``max_bytes``: by its Content-Length before anything is read, or, for a
    chunked body, as soon as the bytes received pass the limit (never the whole body in memory)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _error(self, size: str) -> HTTPException:
        return HTTPException(
            413, f"the request body is {size}; the limit is {self.max_bytes:,} bytes (max_body_bytes)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            error = self._error(f"{length} bytes" if length.isdigit() else f"of length {length!r}")
            await json_error(str(error.detail), None, 413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise self._error(f"over {seen:,} bytes")  # FastAPI answers it through the 413 handler
            return message

        await self.app(scope, counted, send)


class CrashGuard:
    """An unexpected exception becomes the JSON 500 here and goes no further.

    Starlette's outermost error middleware re-raises after its 500, and uvicorn then closes the
    connection, so a kept-alive client's next, valid request failed too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise  # half a response is out: only closing the connection can say so
            await json_error("internal error; the server log has the details", None, 500)(
                scope, receive, send
            )
