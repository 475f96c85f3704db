"""The accounts REST API: tokens, ``/me``, public profiles, portfolios, skills, and the
admin's suspend/reinstate. Thin: every rule lives in the services."""

from __future__ import annotations

import contextlib
import uuid
from typing import Annotated, Any

import structlog
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from mercato.core.accounts import schemas
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.profiles import ProfileService, withhold_if_hidden
from mercato.core.accounts.services import AccountService
from mercato.core.accounts.sessions import Principal, limiter_of
from mercato.core.images import store_image
from mercato.core.moderation.audit import record
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.ratelimit import client_address
from mercato.core.site import Site

log = structlog.get_logger("mercato.accounts")
API = "/api/v1"
Upload = Annotated[UploadFile, Body(media_type=RequestEncodingType.MULTI_PART)]


def require_principal(request: Request[Any, Any, Any]) -> Principal:
    """The signed-in person, or 401."""
    principal = principal_of(request)
    if principal is None:
        raise NotAuthorizedException("Log in first.", headers={"WWW-Authenticate": "Bearer"})
    return principal


async def current_user(request: Request[Any, Any, Any], session: AsyncSession, site: Site) -> User:
    """The signed-in person's account row; 401 when there is none or it is not active."""
    principal = require_principal(request)
    user = await session.get(User, principal.user_id)
    if user is None or user.status != UserStatus.ACTIVE:
        raise NotAuthorizedException("Your session has ended. Log in again.")
    return user


async def limit_mail(request: Request[Any, Any, Any], site: Site, bucket: str, account: str) -> None:
    """Mails per client address and per account (or address asked for) per hour. Call it
    outside any open transaction (SQLite has one writer)."""
    limiter = limiter_of(site)
    per_hour = site.settings.accounts.mails_per_hour
    address = client_address(request, site.settings.accounts.trusted_proxies)
    await limiter.check(f"{bucket}:ip", address, limit=per_hour * 4, window_seconds=3600)
    await limiter.check(f"{bucket}:account", account.casefold(), limit=per_hour, window_seconds=3600)


async def delete_files(site: Site, keys: list[str]) -> None:
    """Remove stored files after the database no longer points at them."""
    storage = site.plugins.storage(site)
    for key in keys:
        try:
            await storage.delete(key)
        except Exception:
            log.warning("could not delete a stored file", key=key)


class AuthController(Controller):
    path = f"{API}/auth"
    tags = ["auth"]

    @post("/refresh", status_code=200, summary="Swap a refresh token for new tokens (rotation)")
    async def refresh(self, data: JSONBody[schemas.RefreshBody],
                      site: NamedDependency[Site]) -> schemas.TokenResponse:
        async with site.db.transaction() as session:
            pair = await AccountService(site).refresh(session, data.refresh_token)
        if pair is None:
            raise NotAuthorizedException("This refresh token was already used, so this session is ended "
                                         "for safety. Log in again.")
        return schemas.TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                                     token_type=pair.token_type, expires_in=pair.expires_in)

    @post("/logout", status_code=200, summary="End this session (all its tokens stop working)")
    async def logout(self, request: Request[Any, Any, Any], site: NamedDependency[Site],
                     data: JSONBody[schemas.LogoutBody | None] = None) -> schemas.Message:
        principal = principal_of(request)
        service = AccountService(site)
        async with site.db.transaction() as session:
            if principal is not None:
                await service.revoke_session_id(session, principal.session_id, reason="logout")
            elif data is not None and data.refresh_token:
                with contextlib.suppress(NotAuthorizedException):
                    pair_session = await service.session_of_refresh_token(session, data.refresh_token)
                    await service.revoke_sessions(session, [pair_session], reason="logout")
            else:
                raise NotAuthorizedException("Send the access token or the refresh token of the session "
                                             "to end.")
        return schemas.Message(message="Logged out.")

    @post("/verify-email", status_code=200, summary="Verify an e-mail address with the mailed token")
    async def verify_email(self, data: JSONBody[schemas.TokenBody],
                           site: NamedDependency[Site]) -> schemas.Message:
        async with site.db.transaction() as session:
            await AccountService(site).verify_email(session, data.token)
        return schemas.Message(message="Your e-mail address is verified.")

    @post("/verify-email/resend", status_code=202, summary="Mail a new verification link")
    async def resend_verification(self, request: Request[Any, Any, Any],
                                  site: NamedDependency[Site]) -> schemas.Message:
        # Counted before the transaction opens: on SQLite the limiter's own write would
        # otherwise wait for this request's write lock.
        await limit_mail(request, site, "verify-mail", str(require_principal(request).user_id))
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            if user.email_verified:
                return schemas.Message(message="Your e-mail address is already verified.")
            await AccountService(site).send_verification(session, user)
        return schemas.Message(message=f"We sent a new link to {user.email}.")

    @post("/confirm-email", status_code=200, summary="Confirm a new e-mail address with the mailed token")
    async def confirm_email(self, data: JSONBody[schemas.TokenBody],
                            site: NamedDependency[Site]) -> schemas.Message:
        async with site.db.transaction() as session:
            user = await AccountService(site).confirm_email_change(session, data.token)
        return schemas.Message(message=f"Your e-mail address is now {user.email}.")

    @get("/providers", summary="How people can sign in here")
    async def providers(self, site: NamedDependency[Site]) -> schemas.ProvidersResponse:
        return schemas.ProvidersResponse(
            password=site.plugins.pm.has_plugin("password_auth"),
            providers=[schemas.ProviderInfo(id=p.id, label=p.label, login_url=f"/auth/{p.id}/login")
                       for p in site.plugins.auth_providers(site)],
        )


class MeController(Controller):
    path = f"{API}/me"
    tags = ["me"]

    @get("/", summary="The signed-in person, with private fields")
    async def get_me(self, request: Request[Any, Any, Any], site: NamedDependency[Site]) -> schemas.Me:
        async with site.db.reading() as session:
            user = await current_user(request, session, site)
            return await ProfileService(site).me(session, user)

    @patch("/", summary="Change your profile (absent fields stay as they are)")
    async def update_me(self, request: Request[Any, Any, Any], data: JSONBody[schemas.MeUpdate],
                        site: NamedDependency[Site]) -> schemas.Me:
        profiles = ProfileService(site)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            await profiles.update(session, user, data)
            return await profiles.me(session, user)

    @delete("/", status_code=200, summary="Delete your account (personal data removed)")
    async def delete_me(self, request: Request[Any, Any, Any], site: NamedDependency[Site],
                        data: JSONBody[schemas.DeleteAccountBody | None] = None) -> schemas.Message:
        service = AccountService(site)
        principal = require_principal(request)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            await service.require_reauthentication(session, user, password=data.password if data else None,
                                                   session_id=principal.session_id)
            files = await service.delete_account(session, user)
        await delete_files(site, files)
        return schemas.Message(message="Your account is deleted.")

    @post("/email", status_code=202, summary="Change your e-mail address (confirmed by a link)")
    async def change_email(self, request: Request[Any, Any, Any], data: JSONBody[schemas.ChangeEmailBody],
                           site: NamedDependency[Site]) -> schemas.Message:
        service = AccountService(site)
        principal = require_principal(request)
        await limit_mail(request, site, "change-email", str(principal.user_id))
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            await service.require_reauthentication(session, user, password=data.password,
                                                   session_id=principal.session_id)
            await service.request_email_change(session, user, data.new_email)
        return schemas.Message(message=f"We sent a confirmation link to {data.new_email}.")

    @put("/avatar", summary="Upload a new avatar (JPEG, PNG, GIF or WebP)")
    async def upload_avatar(self, request: Request[Any, Any, Any], data: Upload,
                            site: NamedDependency[Site]) -> schemas.Me:
        profiles = ProfileService(site)
        require_principal(request)
        stored = await store_image(profiles.storage, await data.read(), folder="avatars",
                                   settings=site.settings.uploads, max_side=512)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            old = await profiles.set_avatar(session, user, stored.key)
            me = await profiles.me(session, user)
        await delete_files(site, [old] if old else [])
        return me

    @delete("/avatar", status_code=200, summary="Remove your avatar")
    async def delete_avatar(self, request: Request[Any, Any, Any], site: NamedDependency[Site]) -> schemas.Me:
        profiles = ProfileService(site)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            old = await profiles.set_avatar(session, user, None)
            me = await profiles.me(session, user)
        await delete_files(site, [old] if old else [])
        return me


class UsersController(Controller):
    path = API
    tags = ["users"]

    @get("/users/{user_id:uuid}", summary="A person's public profile")
    async def get_user(self, user_id: FromPath[uuid.UUID], site: NamedDependency[Site]) -> schemas.PublicUser:
        async with site.db.reading() as session:
            user = await AccountService(site).get_user(session, user_id)
            if user.status != UserStatus.ACTIVE:
                raise NotFoundException("No such user.")
            return await withhold_if_hidden(session, await ProfileService(site).public_user(session, user))

    @get("/users/{user_id:uuid}/portfolio", summary="A person's portfolio, newest first")
    async def list_portfolio(self, user_id: FromPath[uuid.UUID], site: NamedDependency[Site],
                             limit: Limit = DEFAULT_LIMIT,
                             cursor: Cursor = None) -> schemas.PortfolioPage:
        async with site.db.reading() as session:
            user = await AccountService(site).get_user(session, user_id)
            if user.status != UserStatus.ACTIVE:
                raise NotFoundException("No such user.")
            return await ProfileService(site).list_portfolio(session, user.id, limit=limit, cursor=cursor)

    @post("/users/{user_id:uuid}/portfolio", summary="Add an item to your portfolio")
    async def add_portfolio_item(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID],
                                 data: JSONBody[schemas.PortfolioItemIn],
                                 site: NamedDependency[Site]) -> schemas.PortfolioItemOut:
        profiles = ProfileService(site)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            if user.id != user_id:
                raise PermissionDeniedException("You can only add items to your own portfolio.")
            item = await profiles.add_item(session, user, data)
            return await profiles.portfolio_out(session, item)

    @patch("/portfolio/{item_id:uuid}", summary="Change one of your portfolio items")
    async def update_portfolio_item(self, request: Request[Any, Any, Any], item_id: FromPath[uuid.UUID],
                                    data: JSONBody[schemas.PortfolioItemUpdate],
                                    site: NamedDependency[Site]) -> schemas.PortfolioItemOut:
        profiles = ProfileService(site)
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            item = await profiles.own_item(session, user, item_id)
            dropped = await profiles.update_item(session, item, data)
            out = await profiles.portfolio_out(session, item)
        await delete_files(site, dropped)
        return out

    @post("/portfolio/{item_id:uuid}/images", summary="Add an image to one of your portfolio items")
    async def add_portfolio_image(self, request: Request[Any, Any, Any], item_id: FromPath[uuid.UUID],
                                  data: Upload, site: NamedDependency[Site]) -> schemas.PortfolioItemOut:
        profiles = ProfileService(site)
        async with site.db.reading() as session:  # fail fast before the image work
            await profiles.own_item(session, await current_user(request, session, site), item_id)
        stored = await store_image(profiles.storage, await data.read(), folder="portfolio",
                                   settings=site.settings.uploads)
        try:
            async with site.db.transaction() as session:
                item = await profiles.own_item(session, await current_user(request, session, site), item_id)
                profiles.add_image(item, key=stored.key, width=stored.width, height=stored.height)
                return await profiles.portfolio_out(session, item)
        except Exception:
            await delete_files(site, [stored.key])
            raise

    @delete("/portfolio/{item_id:uuid}", status_code=204, summary="Remove one of your portfolio items")
    async def delete_portfolio_item(self, request: Request[Any, Any, Any], item_id: FromPath[uuid.UUID],
                                    site: NamedDependency[Site]) -> None:
        profiles = ProfileService(site)
        async with site.db.transaction() as session:
            item = await profiles.own_item(session, await current_user(request, session, site), item_id)
            keys = [image["key"] for image in item.images]
            await session.delete(item)
        await delete_files(site, keys)

    @get("/skills", summary="The skills taxonomy (search by name or alias)")
    async def list_skills(self, site: NamedDependency[Site],
                          q: Annotated[str | None, QueryParameter(max_length=64)] = None,
                          category: FromQuery[str | None] = None, limit: Limit = 50,
                          cursor: Cursor = None) -> schemas.SkillPage:
        async with site.db.reading() as session:
            return await ProfileService(site).list_skills(session, q=q, category=category, limit=limit,
                                                          cursor=cursor)


class AdminUsersController(Controller):
    path = f"{API}/admin/users"
    tags = ["admin"]

    async def _admin_target(self, request: Request[Any, Any, Any], session: AsyncSession, site: Site,
                            user_id: uuid.UUID) -> tuple[User, User]:
        admin = await current_user(request, session, site)
        if not admin.is_admin:
            raise PermissionDeniedException("Administrators only.")
        target = await session.get(User, user_id)
        if target is None or target.status == UserStatus.DELETED:
            raise NotFoundException("No such user.")
        return admin, target

    @post("/{user_id:uuid}/suspend", status_code=200, summary="Suspend an account (signed out at once)")
    async def suspend(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID],
                      data: JSONBody[schemas.SuspendBody], site: NamedDependency[Site]) -> schemas.Message:
        async with site.db.transaction() as session:
            admin, target = await self._admin_target(request, session, site, user_id)
            if target.id == admin.id:
                raise PermissionDeniedException("You cannot suspend yourself.")
            await AccountService(site).suspend(session, target, reason=data.reason, actor_id=admin.id)
            record(session, admin.id, "user.suspend", "user", target.id, reason=data.reason)
        return schemas.Message(message=f"{target.display_name} is suspended.")

    @post("/{user_id:uuid}/reinstate", status_code=200, summary="Lift a suspension")
    async def reinstate(self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID],
                        site: NamedDependency[Site]) -> schemas.Message:
        async with site.db.transaction() as session:
            admin, target = await self._admin_target(request, session, site, user_id)
            await AccountService(site).reinstate(session, target, actor_id=admin.id)
            record(session, admin.id, "user.reinstate", "user", target.id)
        return schemas.Message(message=f"{target.display_name} is active again.")


API_CONTROLLERS = [AuthController, MeController, UsersController, AdminUsersController]
