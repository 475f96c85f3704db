"""The browser round trip of external log-in: ``/auth/<provider>/login`` → the provider →
``/auth/<provider>/callback``.

``state``, ``nonce`` and the PKCE verifier are kept in a short-lived, signed, HttpOnly
cookie rather than server memory, so the callback may land on any app instance.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import msgspec
import structlog
from litestar import Request, get
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from mercato.core.accounts.middleware import csrf_cookie, secure_cookies, session_cookie
from mercato.core.accounts.models import SessionKind
from mercato.core.accounts.services import SIGNUP_ROLES, AccountService
from mercato.core.security.providers import AuthProvider, ProviderError
from mercato.core.security.tokens import derive_key
from mercato.core.site import Site

log = structlog.get_logger("mercato.accounts")

FLOW_COOKIE = "mercato_oauth"
FLOW_SECONDS = 600


class _Flow(msgspec.Struct, frozen=True):
    provider: str
    state: str
    nonce: str
    verifier: str
    next: str
    roles: list[str]
    expires: int


def safe_next(value: str | None) -> str:
    """Only same-site paths: ``/x`` yes, ``//evil.example`` and ``https://…`` no."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")):
        return value
    return "/"


def _sign(site: Site, flow: _Flow) -> str:
    body = base64.urlsafe_b64encode(msgspec.json.encode(flow)).decode().rstrip("=")
    mac = hmac.new(derive_key(site.settings.secret_key(), "oauth-flow"), body.encode(), hashlib.sha256)
    return f"{body}.{mac.hexdigest()}"


def _unsign(site: Site, value: str | None) -> _Flow | None:
    if not value or "." not in value:
        return None
    body, _, mac = value.rpartition(".")
    expected = hmac.new(derive_key(site.settings.secret_key(), "oauth-flow"), body.encode(), hashlib.sha256)
    if not hmac.compare_digest(mac, expected.hexdigest()):
        return None
    try:
        flow = msgspec.json.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), type=_Flow)
    except (ValueError, msgspec.DecodeError):
        return None
    return flow if flow.expires > time.time() else None


def provider_of(site: Site, provider_id: str) -> AuthProvider:
    for provider in site.plugins.auth_providers(site):
        if provider.id == provider_id:
            return provider  # type: ignore[no-any-return]
    raise NotFoundException("No such sign-in method.")


def redirect_uri(site: Site, provider_id: str) -> str:
    return f"{site.settings.site.base_url.rstrip('/')}/auth/{provider_id}/callback"


async def _failure(request: Request[Any, Any, Any], site: Site, provider: AuthProvider | None,
                   message: str, *, status_code: int) -> Template:
    response = await site.templates.page(
        request, "accounts/auth_failed.html",
        {"provider_label": provider.label if provider else "", "message": message}, status_code=status_code,
    )
    response.cookies.append(Cookie(key=FLOW_COOKIE, value="", max_age=0, path="/auth", httponly=True))
    return response


@get("/auth/{provider_id:str}/login", include_in_schema=False, name="oauth-login")
async def oauth_login(request: Request[Any, Any, Any], provider_id: FromPath[str],
                      site: NamedDependency[Site],
                      next: FromQuery[str | None] = None,
                      roles: FromQuery[str | None] = None) -> Redirect | Template:
    provider = provider_of(site, provider_id)
    wanted = [r for r in (roles or "").split(",") if r in SIGNUP_ROLES]
    flow = _Flow(provider=provider.id, state=secrets.token_urlsafe(24), nonce=secrets.token_urlsafe(24),
                 verifier=secrets.token_urlsafe(48), next=safe_next(next), roles=wanted,
                 expires=int(time.time()) + FLOW_SECONDS)
    try:
        url = await provider.authorization_url(redirect_uri=redirect_uri(site, provider.id), state=flow.state,
                                               nonce=flow.nonce, code_verifier=flow.verifier)
    except ProviderError as exc:
        return await _failure(request, site, provider, exc.message,
                              status_code=503 if exc.unavailable else 400)
    response = Redirect(url, status_code=303)
    response.cookies.append(Cookie(key=FLOW_COOKIE, value=_sign(site, flow), max_age=FLOW_SECONDS,
                                   path="/auth", httponly=True, samesite="lax", secure=secure_cookies(site)))
    return response


@get("/auth/{provider_id:str}/callback", include_in_schema=False, name="oauth-callback")
async def oauth_callback(request: Request[Any, Any, Any], provider_id: FromPath[str],
                         site: NamedDependency[Site]) -> Redirect | Template:
    provider = provider_of(site, provider_id)
    flow = _unsign(site, request.cookies.get(FLOW_COOKIE))
    params = {key: value for key, value in request.query_params.items() if isinstance(value, str)}
    state = params.get("state", "")
    if flow is None or flow.provider != provider.id or not hmac.compare_digest(state, flow.state):
        log.warning("oauth callback with a bad or missing state", provider=provider.id)
        return await _failure(request, site, provider, "This sign-in attempt expired or did not start here. "
                              "Please start again.", status_code=400)
    try:
        identity = await provider.complete(redirect_uri=redirect_uri(site, provider.id), params=params,
                                           nonce=flow.nonce, code_verifier=flow.verifier)
        service = AccountService(site)
        async with site.db.transaction() as session:
            user = await service.login_external(session, identity, roles=flow.roles)
            if not user.is_active:
                raise ProviderError("This account is suspended.")
            auth = await service.start_session(session, user, kind=SessionKind.BROWSER,
                                               user_agent=request.headers.get("user-agent", ""))
            token = service.session_cookie_token(user, auth)
            max_age = int((auth.expires_at - auth.created_at).total_seconds())
    except ProviderError as exc:
        return await _failure(request, site, provider, exc.message,
                              status_code=503 if exc.unavailable else 400)
    response = Redirect(flow.next, status_code=303)
    response.cookies.extend([
        session_cookie(site, token, max_age),
        csrf_cookie(site, secrets.token_urlsafe(24)),
        Cookie(key=FLOW_COOKIE, value="", max_age=0, path="/auth", httponly=True),
    ])
    return response


OAUTH_ROUTES = [oauth_login, oauth_callback]
