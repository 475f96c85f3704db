"""The accounts domain as a built-in plugin: tables, API, sign-in round trips, the
authentication middleware, the skills catalogue and ``mercato users``."""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import select

from mercato import hookimpl
from mercato.core.accounts.events import ProfileUpdated
from mercato.core.accounts.middleware import auth_middleware, cookie_principal, csrf_token_for
from mercato.core.accounts.models import ACCOUNT_MODELS, Profile, User, UserSkill, UserStatus
from mercato.core.accounts.oauth import OAUTH_ROUTES
from mercato.core.accounts.pages import PAGE_ROUTES
from mercato.core.accounts.profiles import sync_skills
from mercato.core.accounts.routes import API_CONTROLLERS
from mercato.core.accounts.sessions import runtime_of
from mercato.core.db import utcnow
from mercato.core.events import Event, emit
from mercato.core.moderation.subjects import ReportedItem, ReportSubject, excerpt

if TYPE_CHECKING:
    from litestar import Request
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site


@hookimpl
def register_models(site: Site) -> list[Any]:
    return list(ACCOUNT_MODELS)


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [*API_CONTROLLERS, *OAUTH_ROUTES, *PAGE_ROUTES]


@hookimpl
def register_middleware(site: Site) -> list[Any]:
    return [auth_middleware(site)]


@hookimpl
async def on_startup(site: Site) -> None:
    ids = [provider.id for provider in site.plugins.auth_providers(site)]
    taken = sorted({i for i in ids if ids.count(i) > 1})
    if taken:
        raise ValueError(f"two sign-in providers use the id {', '.join(map(repr, taken))}: rename one "
                         "(e.g. its `[plugins.oidc_auth.providers.<id>]` table)")
    await runtime_of(site).start()


@hookimpl
async def on_shutdown(site: Site) -> None:
    await runtime_of(site).stop()


@hookimpl
async def extra_template_vars(site: Site, request: Request[Any, Any, Any] | None) -> dict[str, Any]:
    """``current_user`` (the signed-in ``User`` or None) and ``csrf_token`` for forms."""
    if request is None:
        return {}
    principal = cookie_principal(request, site)
    user = None
    if principal is not None:
        async with site.db.reading() as session:
            user = await session.get(User, principal.user_id)
            if user is not None:
                session.expunge(user)  # keep its loaded values past the read's rollback
    return {"current_user": user, "csrf_token": csrf_token_for(request, site),
            "auth_providers": site.plugins.auth_providers(site),
            "password_auth": site.plugins.pm.has_plugin("password_auth"),
            "disputes_admin": site.plugins.pm.has_plugin("disputes"),
            "require_verified_email": site.settings.accounts.require_verified_email}


@hookimpl
def register_commands() -> list[click.Command]:
    return [users]


@click.group()
def users() -> None:
    """Manage accounts."""


def _read_password(password_stdin: bool) -> str:
    from mercato.cli import fail

    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        fail("the passwords differ; nothing was changed")
    return password


async def _in_site(site: Site, job: Any) -> str:
    from mercato.core.migrate import upgrade_async

    if site.db.sqlite:
        await upgrade_async(site)
    try:
        async with site.db.transaction() as session:
            await sync_skills(session)
            return str(await job(site, session))
    finally:
        await site.db.dispose()


@users.command("create")
@click.option("--email", prompt=True, help="The person's e-mail address.")
@click.option("--name", "display_name", prompt="Display name", help="Their name as others see it.")
@click.option("--role", "roles", multiple=True, type=click.Choice(["client", "developer"]),
              default=("client",), show_default=True, help="Repeat for both.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_obj
def create_user(ctx: Any, email: str, display_name: str, roles: tuple[str, ...],
                password_stdin: bool) -> None:
    """Create a verified account (for sites where sign-up is closed)."""
    from mercato.core.accounts.services import AccountService

    password = _read_password(password_stdin)

    async def job(site: Site, session: Any) -> str:
        user = await AccountService(site).register(
            session, email=email, display_name=display_name, roles=list(roles), password=password,
            method="cli", verified=True)
        return f"Created {user.email} ({', '.join(sorted(user.roles))})."

    _run_with_site(ctx, job)


@users.command("create-admin")
@click.option("--email", prompt=True, help="The admin's e-mail address.")
@click.option("--name", "display_name", prompt="Display name", help="The admin's name as others see it.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_obj
def create_admin(ctx: Any, email: str, display_name: str, password_stdin: bool) -> None:
    """Create an administrator (verified, client and developer), or make an existing account
    admin: its password is replaced, its address counts as verified and a suspension ends."""
    from mercato.core.accounts.models import UserStatus
    from mercato.core.accounts.services import AccountService

    password = _read_password(password_stdin)

    async def job(site: Site, session: Any) -> str:
        service = AccountService(site)
        user = await service.find_by_email(session, email)
        if user is None:
            user = await service.register(session, email=email, display_name=display_name,
                                          roles=["client", "developer"], password=password, method="cli",
                                          verified=True, admin=True)
            return f"Created administrator {user.email}."
        await service.set_password(session, user, password, keep_session=None, field="password")
        user.is_admin = True
        if user.status == UserStatus.SUSPENDED:
            await service.reinstate(session, user, actor_id=None)
        service.mark_verified(session, user)
        return f"{user.email} is now an administrator (password changed; other sessions signed out)."

    _run_with_site(ctx, job)


def _run_with_site(ctx: Any, job: Any) -> None:
    """Run ``job(site, session)`` in one transaction and print what it says."""
    from mercato.cli import fail

    site = ctx.site()
    try:
        message = asyncio.run(_in_site(site, job))
    except Exception as exc:
        fail(_plain(exc))
    click.echo(message)


def _plain(exc: Exception) -> str:
    """A field error's message (``Use at least 8 characters.``) rather than its repr."""
    extra = getattr(exc, "extra", None)
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        return f"{extra[0].get('key')}: {extra[0].get('message')}"
    return str(getattr(exc, "detail", "") or exc)


@hookimpl
def register_report_subjects(site: Site) -> list[ReportSubject]:
    """``profile``: a person's public profile; hiding it leaves only their name."""

    async def describe(session: AsyncSession, user_id: uuid.UUID, viewer_id: uuid.UUID | None
                       ) -> ReportedItem | None:
        user = await session.get(User, user_id)
        if user is None or user.status == UserStatus.DELETED:
            return None
        if viewer_id is not None and user.status != UserStatus.ACTIVE:
            return None
        profile = await session.get(Profile, user_id)
        text = " — ".join(part for part in (profile.headline, profile.bio) if part) if profile else ""
        return ReportedItem(owner_id=user.id, title=user.display_name, excerpt=excerpt(text),
                            url=f"/users/{user.id}",
                            hidden=profile is not None and profile.hidden_at is not None)

    async def hide(session: AsyncSession, user_id: uuid.UUID, hidden: bool) -> None:
        profile = await session.get(Profile, user_id)
        if profile is None:
            profile = Profile(user_id=user_id)
            session.add(profile)
        profile.hidden_at = utcnow() if hidden else None
        skills = await session.scalars(
            select(UserSkill.skill_slug).where(UserSkill.user_id == user_id).order_by(UserSkill.position))
        emit(session, Event.of(ProfileUpdated(user_id=user_id, skills=list(skills))))

    return [ReportSubject(kind="profile", label="a profile", describe=describe, hide=hide)]
