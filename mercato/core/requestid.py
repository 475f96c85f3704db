"""Request ids: taken from a sane ``X-Request-ID`` header or generated, echoed back in the
response and bound to every log line written while serving the request."""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

import structlog
from litestar.datastructures import MutableScopeHeaders

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SANE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def request_id_of(request: Request[Any, Any, Any]) -> str:
    return str(request.scope.get("state", {}).get("request_id", ""))


async def stamp_request_id(message: Message, scope: Scope) -> None:
    """``before_send`` hook: responses Litestar answers without reaching a route (404, 405)
    bypass route middleware, so the header is also set here."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        if HEADER not in headers:
            state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
            headers[HEADER] = state.setdefault("request_id", uuid.uuid4().hex)


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _SANE.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id  # type: ignore[typeddict-unknown-key]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)[HEADER] = request_id
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await app(scope, receive, send_with_id)

    return middleware
