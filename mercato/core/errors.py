"""Errors as RFC 9457 problem details (JSON) or as the theme's error page (browsers).

Expected errors keep their status and message; anything unexpected is logged with the
request id and answered with a generic 500 that quotes the id, never a stack trace.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import structlog
from litestar import MediaType, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect

from mercato.core.requestid import request_id_of

if TYPE_CHECKING:
    from litestar import Request

    from mercato.core.site import Site

log = structlog.get_logger("mercato.errors")

PROBLEM_JSON = "application/problem+json"
JSON_PREFIXES = ("/api/", "/schema", "/health", "/ready")
LOGIN_PATH = "/login"
"""Where a browser asking for a page that needs a signed-in person is sent."""
PAGE_HINTS = {
    404: "We couldn't find that page. It may have moved, or the address may be mistyped.",
    403: "You don't have access to this page.",
    405: "That page can't be used this way.",
}


def wants_html(request: Request[Any, Any, Any]) -> bool:
    """Browsers asking for a page get HTML; API clients and JSON paths get problem details."""
    if request.url.path.startswith(JSON_PREFIXES):
        return False
    accept = request.headers.get("accept", "")
    return "text/html" in accept


def problem(
    status: int, *, title: str | None = None, detail: str | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


class ErrorPage(Response[Any]):
    """The theme's ``error.html``. Litestar calls exception handlers synchronously, while
    template context may come from async hooks, so rendering waits for the ASGI call."""

    def __init__(self, site: Site, body: dict[str, Any], headers: dict[str, str] | None) -> None:
        super().__init__(content=None, status_code=body["status"], headers=headers)
        self.site = site
        self.body = body

    def to_asgi_response(self, app: Any, request: Request[Any, Any, Any], **kwargs: Any) -> Any:
        site, body, headers = self.site, self.body, dict(self.headers)

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            detail = body.get("detail") or PAGE_HINTS.get(body["status"])
            context = {"status_code": body["status"], "title": body["title"],
                       "detail": detail, "request_id": body.get("request_id")}
            try:
                context = await site.templates.context(request, "error.html", context)
                html = site.templates.env.get_template("error.html").render(context)
                response: Response[Any] = Response(
                    html, status_code=body["status"], media_type=MediaType.HTML, headers=headers
                )
            except Exception:  # a broken theme must not hide the original error
                log.exception("rendering error.html failed")
                response = Response(body, status_code=body["status"], media_type=PROBLEM_JSON)
            await response.to_asgi_response(app, request)(scope, receive, send)

        return asgi


def field_error(field: str, message: str, *, status_code: int = 400) -> ValidationException:
    """A 400 naming the one field that is wrong, shaped like msgspec's validation errors."""
    return ValidationException(detail=message, status_code=status_code,
                               extra=[{"key": field, "message": message, "source": "body"}])


def exception_handlers(site: Site) -> dict[Any, Any]:
    def respond(request: Request[Any, Any, Any], body: dict[str, Any],
                headers: dict[str, str] | None = None) -> Response[Any]:
        if wants_html(request):
            return ErrorPage(site, body, headers)
        return Response(body, status_code=body["status"], media_type=PROBLEM_JSON,
                        headers=headers)

    def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
        errors = [
            {"field": _field_of(item), "source": item.get("source"), "message": item.get("message")}
            for item in (exc.extra if isinstance(exc.extra, list) else [])
            if isinstance(item, dict)
        ]
        body = problem(400, title="Invalid request", detail=_validation_detail(exc), errors=errors)
        return respond(request, body)

    def on_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
        status = exc.status_code
        if status == 401 and request.method == "GET" and wants_html(request):
            return Redirect(f"{LOGIN_PATH}?{urlencode({'next': request.url.path})}", status_code=303)
        phrase = HTTPStatus(status).phrase
        detail = exc.detail if exc.detail and exc.detail != phrase else None
        extra = exc.extra if isinstance(exc.extra, dict) else {}
        body = problem(status, detail=detail, **extra)
        return respond(request, body, headers=exc.headers)

    def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        request_id = request_id_of(request)
        log.exception("unhandled error", path=request.url.path, method=request.method,
                      request_id=request_id)
        body = problem(
            500, detail="Something went wrong on our side. Quote the reference if you "
            "contact support.", request_id=request_id,
        )
        return respond(request, body)

    return {ValidationException: on_validation, HTTPException: on_http, Exception: on_unexpected}


_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_AT_PATH = re.compile(r"- at `\$\.([^`]+)`")


def _field_of(item: dict[str, Any]) -> Any:
    """The offending field: msgspec names it in the message when the key is the whole body."""
    message = str(item.get("message") or "")
    for pattern in (_MISSING_FIELD, _AT_PATH):
        found = pattern.search(message)
        if found:
            return found.group(1)
    return item.get("key")


def _validation_detail(exc: ValidationException) -> str:
    detail = exc.detail or ""
    if detail.startswith("Validation failed for"):
        return "Some fields are missing or invalid; see `errors`."
    return detail or "The request is not valid."

