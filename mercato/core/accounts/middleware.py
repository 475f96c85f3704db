"""Authentication and CSRF for every request.

- ``Authorization: Bearer <access token>`` (the API): a valid, unrevoked token makes
  ``request.user`` a :class:`~mercato.core.accounts.sessions.Principal`; an invalid one is
  a 401 at once, so clients know to refresh.
- Otherwise the theme's HttpOnly, SameSite=Lax session cookie; a bad or revoked one is
  dropped (the person is simply signed out).
- CSRF: every unsafe request carrying the browser's ambient credentials must carry the
  CSRF token - all theme forms (field ``csrf_token``), and API calls authenticated by the
  cookie (header ``X-CSRF-Token``). API calls with a Bearer token need none: a browser never
  attaches one on its own. The token is a signed double submit bound to the session, so a
  token lifted from another browser or another session is useless.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar._parsers import parse_cookie_string
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from mercato.core.accounts.sessions import Principal, runtime_of
from mercato.core.security.tokens import InvalidToken, csrf_token

if TYPE_CHECKING:
    from litestar import Request
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from mercato.core.site import Site

SESSION_COOKIE = "mercato_session"
CSRF_COOKIE = "mercato_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
SKIP_PREFIXES = ("/static/", "/schema/assets/", "/media/")
_STATE_NONCE = "csrf_nonce"


def principal_of(request: Request[Any, Any, Any]) -> Principal | None:
    """The signed-in person of ``request`` (None when anonymous)."""
    return request.scope.get("user")  # type: ignore[return-value]


def cookie_principal(request: Request[Any, Any, Any], site: Site) -> Principal | None:
    """The browser session's person for requests the middleware never saw: Litestar runs
    route middleware only on matched routes, so a themed 404 would otherwise show everyone
    as signed out."""
    if "user" in request.scope:
        return principal_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    runtime = runtime_of(site)
    try:
        claims = runtime.signer.verify("session", token)
    except InvalidToken:
        return None
    if claims.session_id in runtime.revoked:
        return None
    return Principal(claims.user_id, claims.session_id, claims.roles, "cookie")


def csrf_token_for(request: Request[Any, Any, Any], site: Site) -> str:
    """The CSRF token forms on this page must send back."""
    nonce = request.scope.get("state", {}).get(_STATE_NONCE) or request.cookies.get(CSRF_COOKIE, "")
    principal = cookie_principal(request, site)
    return csrf_token(site.settings.secret_key(), nonce, str(principal.session_id) if principal else "")


def secure_cookies(site: Site) -> bool:
    return site.settings.site.base_url.startswith("https://")


def session_cookie(site: Site, value: str, max_age: int) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value=value, max_age=max_age, path="/", httponly=True, samesite="lax",
                  secure=secure_cookies(site))


def csrf_cookie(site: Site, nonce: str) -> Cookie:
    return Cookie(key=CSRF_COOKIE, value=nonce, path="/", httponly=True, samesite="lax",
                  secure=secure_cookies(site))


def expired_session_cookie(site: Site) -> Cookie:
    return Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="lax",
                  secure=secure_cookies(site))


def auth_middleware(site: Site) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware factory the accounts plugin registers."""
    runtime = runtime_of(site)
    signer = runtime.signer
    secret = site.settings.secret_key()

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] not in ("http", "websocket") or scope["path"].startswith(SKIP_PREFIXES):
                await app(scope, receive, send)
                return
            authorization = cookie_header = csrf_header = ""
            for name, value in scope["headers"]:
                if name == b"authorization":
                    authorization = value.decode("latin-1")
                elif name == b"cookie":
                    cookie_header = value.decode("latin-1")
                elif name == CSRF_HEADER:
                    csrf_header = value.decode("latin-1")
            cookies = parse_cookie_string(cookie_header) if cookie_header else {}
            principal: Principal | None = None
            set_cookies: list[Cookie] = []
            if authorization[:7].lower() == "bearer ":
                try:
                    claims = signer.verify("access", authorization[7:].strip())
                    if claims.session_id in runtime.revoked:
                        raise InvalidToken("revoked")
                except InvalidToken:
                    raise NotAuthorizedException(
                        "The access token is invalid, expired or revoked. Refresh it or log in again.",
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    ) from None
                principal = Principal(claims.user_id, claims.session_id, claims.roles, "bearer")
            elif session_token := cookies.get(SESSION_COOKIE):
                try:
                    claims = signer.verify("session", session_token)
                    if claims.session_id in runtime.revoked:
                        raise InvalidToken("revoked")
                    principal = Principal(claims.user_id, claims.session_id, claims.roles, "cookie")
                except InvalidToken:
                    set_cookies.append(expired_session_cookie(site))
            nonce = cookies.get(CSRF_COOKIE, "")
            if len(nonce) < 16:
                nonce = secrets.token_urlsafe(24)
                if not scope["path"].startswith("/api/"):  # API clients use Bearer tokens
                    set_cookies.append(csrf_cookie(site, nonce))
            scope["user"] = principal
            scope["auth"] = principal.via if principal else None
            scope.setdefault("state", {})[_STATE_NONCE] = nonce  # type: ignore[typeddict-unknown-key]

            if scope["type"] == "http" and scope.get("method") not in SAFE_METHODS and (
                not scope["path"].startswith("/api/") or (principal is not None and principal.via == "cookie")
            ):
                sid = str(principal.session_id) if principal else ""
                sent = csrf_header or await _form_token(scope, receive)
                expected = csrf_token(secret, nonce, sid)
                if not sent or not hmac.compare_digest(sent, expected):
                    raise PermissionDeniedException(
                        "This form has expired or did not come from this site. Go back, reload the page "
                        "and try again.")

            if not set_cookies:
                await app(scope, receive, send)
                return

            async def send_with_cookies(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = MutableScopeHeaders.from_message(message)
                    already = " ".join(v for k, v in headers.items() if k.lower() == "set-cookie")
                    for cookie in set_cookies:
                        if f"{cookie.key}=" not in already:
                            headers.add("set-cookie", cookie.to_header(header=""))
                await send(message)

            await app(scope, receive, send_with_cookies)

        return middleware

    return factory


async def _form_token(scope: Scope, receive: Receive) -> str:
    """The ``csrf_token`` field of a form body (Litestar keeps the parsed form for the handler)."""
    request: Request[Any, Any, Any] = scope["litestar_app"].request_class(scope=scope, receive=receive)
    content_type, _ = request.content_type
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return ""
    form = await request.form()
    value = form.get(CSRF_FIELD)
    return value if isinstance(value, str) else ""
