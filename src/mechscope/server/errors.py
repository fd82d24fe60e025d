"""Errors as JSON bodies (``ErrorBody``): 422 for bad input, 503 when busy; the 500 without a trace
is :class:`mechscope.server.middleware.CrashGuard`'s."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mechscope.errors import MechscopeError
from mechscope.server.worker import QueueFull

# Engine messages lead with the field they are about: "targets[0]: ...", "interventions[1]: ...".
_FIELD = re.compile(r"^([A-Za-z_][\w.]*(?:\[\d+\])*(?:\.[\w]+)*): ")


class FieldError(MechscopeError):
    """A request field the server refuses (over a limit, or invalid for this model), named."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def json_error(
    error: str, field: str | None, status: int, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": error, "field": field}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field = ".".join(loc) or None
        msg = first.get("msg", "invalid request")
        if field is None and (m := _FIELD.match(msg)):  # a whole-body check names its field itself
            return json_error(msg, m.group(1), 422)
        return json_error(f"{field}: {msg}" if field else msg, field, 422)

    @app.exception_handler(FieldError)
    async def bad_field(_request: Request, exc: FieldError) -> JSONResponse:
        return json_error(str(exc), exc.field, 422)

    @app.exception_handler(MechscopeError)
    async def bad_input(_request: Request, exc: MechscopeError) -> JSONResponse:
        msg = str(exc)
        m = _FIELD.match(msg)
        return json_error(msg, m.group(1) if m else None, 422)

    @app.exception_handler(QueueFull)
    async def busy(_request: Request, exc: QueueFull) -> JSONResponse:
        return json_error(str(exc), None, 503, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Its headers too: a 405 says which methods are allowed (Allow).
        return json_error(str(exc.detail), None, exc.status_code, dict(exc.headers or {}))
