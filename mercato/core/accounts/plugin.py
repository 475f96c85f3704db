"""The accounts domain as a built-in plugin: tables, API, sign-in round trips, the
authentication middleware, the skills catalogue and ``mercato users``."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TYPE_CHECKING, Any

import click

from mercato import hookimpl
from mercato.core.accounts.middleware import auth_middleware, csrf_token_for, principal_of
from mercato.core.accounts.models import ACCOUNT_MODELS, User
from mercato.core.accounts.oauth import OAUTH_ROUTES
from mercato.core.accounts.pages import PAGE_ROUTES
from mercato.core.accounts.profiles import sync_skills
from mercato.core.accounts.routes import API_CONTROLLERS
from mercato.core.accounts.sessions import runtime_of

if TYPE_CHECKING:
    from litestar import Request

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
    await runtime_of(site).start()


@hookimpl
async def on_shutdown(site: Site) -> None:
    await runtime_of(site).stop()


@hookimpl
async def extra_template_vars(site: Site, request: Request[Any, Any, Any] | None) -> dict[str, Any]:
    """``current_user`` (the signed-in ``User`` or None) and ``csrf_token`` for forms."""
    if request is None:
        return {}
    principal = principal_of(request)
    user = None
    if principal is not None:
        async with site.db.reading() as session:
            user = await session.get(User, principal.user_id)
    return {"current_user": user, "csrf_token": csrf_token_for(request, site),
            "auth_providers": site.plugins.auth_providers(site),
            "password_auth": site.plugins.pm.has_plugin("password_auth"),
            "require_verified_email": site.settings.accounts.require_verified_email}


@hookimpl
def register_commands() -> list[click.Command]:
    return [users]


@click.group()
def users() -> None:
    """Manage accounts."""


@users.command("create-admin")
@click.option("--email", prompt=True, help="The admin's e-mail address.")
@click.option("--name", "display_name", prompt="Display name", help="The admin's name as others see it.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.pass_obj
def create_admin(ctx: Any, email: str, display_name: str, password_stdin: bool) -> None:
    """Create an administrator (verified, client and developer), or make an existing account admin."""
    from mercato.cli import fail

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            fail("the passwords differ; nothing was changed")
    site = ctx.site()
    try:
        message = asyncio.run(_create_admin(site, email, display_name, password))
    except Exception as exc:
        fail(_plain(exc))
    click.echo(message)


async def _create_admin(site: Site, email: str, display_name: str, password: str) -> str:
    from mercato.core.accounts.services import AccountService
    from mercato.core.db import utcnow
    from mercato.core.migrate import upgrade_async

    if site.db.sqlite:
        await upgrade_async(site)
    service = AccountService(site)
    try:
        async with site.db.transaction() as session:
            await sync_skills(session)
            user = await service.find_by_email(session, email)
            if user is not None:
                user.is_admin = True
                if user.email_verified_at is None:
                    user.email_verified_at = utcnow()
                await service.set_password(session, user, password, keep_session=None)
                return f"{user.email} is now an administrator (password changed)."
            user = await service.register(session, email=email, display_name=display_name,
                                          roles=["client", "developer"], password=password, method="cli",
                                          verified=True, admin=True)
            return f"Created administrator {user.email}."
    finally:
        await site.db.dispose()


def _plain(exc: Exception) -> str:
    """A field error's message (``Use at least 8 characters.``) rather than its repr."""
    extra = getattr(exc, "extra", None)
    if isinstance(extra, list) and extra and isinstance(extra[0], dict):
        return f"{extra[0].get('key')}: {extra[0].get('message')}"
    return str(getattr(exc, "detail", "") or exc)
