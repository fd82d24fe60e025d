"""Who may talk to the server: the ``Host`` header it answers (DNS rebinding) and the access token.

A page on another site can make a local browser send requests to the server; the browser then
names that site in ``Host`` (DNS rebinding always goes through a name, never an IP address). So a
request is answered only when ``Host`` is an IP address, localhost, the bound host or a name given
in ``Settings.allowed_hosts``. Beyond loopback the server also requires a token: an
``Authorization: Bearer <token>`` header, or the cookie that opening ``/?token=<token>`` sets.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mechscope.server.errors import json_error
from mechscope.server.settings import Settings

COOKIE = "mechscope_token"
TOKEN_ENV = "MECHSCOPE_TOKEN"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (0.0.0.0 and :: are every interface)."""
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _host_name(header: str) -> str:
    """``Host`` without its port: ``[::1]:8000`` -> ``::1``, ``example.org:80`` -> ``example.org``."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str | None, settings: Settings) -> bool:
    if "*" in settings.allowed_hosts:
        return True
    if not header:
        return False  # HTTP/1.1 requires Host; a client without one is not a browser page anyway
    name = _host_name(header).lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    names = LOOPBACK_NAMES | {settings.host.lower()} | {h.lower() for h in settings.allowed_hosts}
    return name in names


class Guard:
    """ASGI middleware: 400 for a Host the server does not serve, 401 for /api without the token."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not host_allowed(headers.get("host"), self.settings):
            names = ", ".join(["localhost", "an IP address", *self.settings.allowed_hosts])
            error = f"Host {headers.get('host')!r} is not served here (allowed: {names}; serve --allowed-host adds one)"
            await json_error(error, "Host", 400)(scope, receive, send)
            return
        token = self.settings.token
        if token is None:
            await self.app(scope, receive, send)
            return
        given = _given_token(scope, headers)
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            if _query_token(scope) is not None:  # opened from the printed link: remember it
                send = _setting_cookie(send, token)
            await self.app(scope, receive, send)
            return
        if not str(scope["path"]).startswith("/api"):
            await self.app(scope, receive, send)  # the page and the schema hold no data
            return
        await json_error(
            "this server needs its access token: open the link it printed (/?token=...) or send "
            "'Authorization: Bearer <token>'",
            "Authorization",
            401,
        )(scope, receive, send)


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _given_token(scope: Scope, headers: Headers) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is just no token
        return _query_token(scope)
    if COOKIE in cookie:
        return cookie[COOKIE].value
    return _query_token(scope)


def _setting_cookie(send: Send, token: str) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
            message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie.encode())]}
        await send(message)

    return wrapped
