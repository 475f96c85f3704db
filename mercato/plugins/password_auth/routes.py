"""``/api/v1/auth/register``, ``/login``, ``/password-reset/*`` and ``/me/password``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import JSONBody

from mercato.core.accounts import schemas
from mercato.core.accounts.routes import current_user, limit_mail, require_principal
from mercato.core.accounts.services import AccountService, TokenPair
from mercato.core.accounts.sessions import limiter_of
from mercato.core.ratelimit import client_address
from mercato.core.site import Site

LOGIN_FAILED = "The e-mail address or password is wrong."


async def limit_login(request: Request[Any, Any, Any], site: Site, email: str) -> None:
    """Log-in attempts per client address and per account, shared by every instance."""
    settings = site.settings.accounts
    limiter = limiter_of(site)
    address = client_address(request, settings.trusted_proxies)
    await limiter.check("login:ip", address, limit=settings.login_attempts_per_minute, window_seconds=60)
    await limiter.check("login:account", email.strip().casefold(), limit=settings.login_attempts_per_account,
                        window_seconds=60)


async def limit_registration(request: Request[Any, Any, Any], site: Site) -> None:
    settings = site.settings.accounts
    address = client_address(request, settings.trusted_proxies)
    await limiter_of(site).check("register:ip", address, limit=settings.registrations_per_hour,
                                 window_seconds=3600)


def token_response(pair: TokenPair) -> schemas.TokenResponse:
    return schemas.TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                                 token_type=pair.token_type, expires_in=pair.expires_in)


class PasswordAuthController(Controller):
    path = "/api/v1"
    tags = ["auth"]

    @post("/auth/register", status_code=201, summary="Sign up with e-mail and password")
    async def register(self, request: Request[Any, Any, Any], data: JSONBody[schemas.RegisterBody],
                       site: NamedDependency[Site]) -> schemas.TokenResponse:
        if not site.settings.accounts.allow_registration:
            raise PermissionDeniedException("Sign-up is closed on this marketplace.")
        await limit_registration(request, site)
        service = AccountService(site)
        async with site.db.transaction() as session:
            user = await service.register(session, email=data.email, display_name=data.display_name,
                                          roles=list(data.roles), password=data.password)
            await service.send_verification(session, user)
            pair = await service.login_api(session, user, user_agent=request.headers.get("user-agent", ""))
        return token_response(pair)

    @post("/auth/login", status_code=200, summary="Log in with e-mail and password")
    async def login(self, request: Request[Any, Any, Any], data: JSONBody[schemas.LoginBody],
                    site: NamedDependency[Site]) -> schemas.TokenResponse:
        await limit_login(request, site, data.email)
        service = AccountService(site)
        async with site.db.transaction() as session:
            user = await service.authenticate(session, data.email, data.password)
            if user is None:
                raise NotAuthorizedException(LOGIN_FAILED)
            if not user.is_active:
                raise PermissionDeniedException("This account is suspended. Contact the marketplace's "
                                                "support.")
            pair = await service.login_api(session, user, user_agent=request.headers.get("user-agent", ""))
        return token_response(pair)

    @post("/auth/password-reset/request", status_code=202, summary="Mail a password reset link")
    async def request_reset(self, request: Request[Any, Any, Any],
                            data: JSONBody[schemas.PasswordResetRequestBody],
                            site: NamedDependency[Site]) -> schemas.Message:
        await limit_mail(request, site, "reset-mail", data.email)
        async with site.db.transaction() as session:
            await AccountService(site).request_password_reset(session, data.email)
        return schemas.Message(message="If an account uses this address, we sent it a link to choose a new "
                               "password.")

    @post("/auth/password-reset/confirm", status_code=200,
          summary="Choose a new password with the mailed token")
    async def confirm_reset(self, data: JSONBody[schemas.PasswordResetConfirmBody],
                            site: NamedDependency[Site]) -> schemas.Message:
        async with site.db.transaction() as session:
            await AccountService(site).reset_password(session, data.token, data.new_password)
        return schemas.Message(message="Your password is changed. Log in with the new one.")

    @post("/me/password", status_code=200, summary="Change your password (other sessions end)")
    async def change_password(self, request: Request[Any, Any, Any],
                              data: JSONBody[schemas.ChangePasswordBody],
                              site: NamedDependency[Site]) -> schemas.Message:
        principal = require_principal(request)
        await limit_login(request, site, str(principal.user_id))
        service = AccountService(site)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            await service.check_password(user, data.current_password)
            await service.set_password(session, user, data.new_password, keep_session=principal.session_id)
        return schemas.Message(message="Your password is changed. Your other sessions are signed out.")
