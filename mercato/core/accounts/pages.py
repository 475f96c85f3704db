"""The theme's account pages: log-in and sign-up forms, e-mail links, settings (profile,
portfolio, account) and public profiles. Server-rendered forms, no JavaScript needed.

Every page acts on the signed-in person only (never on an id from the form). Forms that
fail re-render with the person's input and the message next to the field (status 400).
Rate limits are counted before a transaction opens (SQLite has one writer). The e-mail and
password forms themselves live in the ``password_auth`` plugin and reuse the helpers here.
"""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from markupsafe import Markup

from mercato.core.accounts.middleware import csrf_cookie, expired_session_cookie, principal_of
from mercato.core.accounts.models import UserStatus
from mercato.core.accounts.oauth import safe_next
from mercato.core.accounts.profiles import MAX_PORTFOLIO_ITEMS, ProfileService, withhold_if_hidden
from mercato.core.accounts.routes import current_user, limit_mail
from mercato.core.accounts.services import SIGNUP_ROLES, AccountService
from mercato.core.ratelimit import RateLimited
from mercato.core.site import Site

if TYPE_CHECKING:
    pass
from mercato.core.accounts.forms import (
    AVAILABILITY,
    ROLE_LABELS,
    AnyRequest,
    Page,
    account_page,
    format_rate,
    local_time,
    login_page,
    redirect,
    render,
    retry_headers,
    signup_page,
    to_login,
)
from mercato.core.accounts.settings_pages import SETTINGS_ROUTES

# ---------------------------------------------------------------------------
# Log in, sign up, log out
# ---------------------------------------------------------------------------


@get("/login", include_in_schema=False, name="accounts:login")
async def login(request: AnyRequest, site: NamedDependency[Site], next: FromQuery[str | None] = None,
                reset: FromQuery[str | None] = None) -> Page:
    """The log-in form (e-mail and password when offered) and the provider buttons."""
    if principal_of(request) is not None:
        return redirect(safe_next(next))
    notice = "Your password is changed. Log in with the new one." if reset else ""
    return await login_page(request, site, next_url=safe_next(next), notice=notice)


@get("/signup", include_in_schema=False, name="accounts:signup")
async def signup(request: AnyRequest, site: NamedDependency[Site],
                 role: FromQuery[str | None] = None) -> Page:
    """The sign-up form: roles, name, e-mail, password, or a provider."""
    if principal_of(request) is not None:
        return redirect("/settings/profile")
    roles = [role] if role in SIGNUP_ROLES else ["client"]
    return await signup_page(request, site, form={"roles": roles})


@post("/logout", include_in_schema=False, name="accounts:logout")
async def logout(request: AnyRequest, site: NamedDependency[Site]) -> Redirect:
    """End this browser's session and forget its cookie."""
    principal = principal_of(request)
    if principal is not None:
        async with site.db.transaction() as session:
            await AccountService(site).revoke_session_id(session, principal.session_id, reason="logout")
    return redirect("/", [expired_session_cookie(site), csrf_cookie(site, secrets.token_urlsafe(24))])


# ---------------------------------------------------------------------------
# E-mailed links
# ---------------------------------------------------------------------------


@get("/verify-email", include_in_schema=False, name="accounts:verify-email")
async def verify_email(request: AnyRequest, site: NamedDependency[Site],
                       token: FromQuery[str | None] = None) -> Template:
    """Open the verification link: verified, or why not (with a new link to ask for)."""
    if not token:
        return await render(request, site, "verify_email.html", {
            "state": "failed", "message": "This link is incomplete. Open the full link from the e-mail."},
            status_code=400)
    try:
        async with site.db.transaction() as session:
            user = await AccountService(site).verify_email(session, token)
    except HTTPException as exc:
        return await render(request, site, "verify_email.html", {"state": "failed", "message": exc.detail},
                            status_code=400)
    return await render(request, site, "verify_email.html", {"state": "verified", "email": user.email})


@post("/verify-email/resend", include_in_schema=False, name="accounts:verify-email-resend")
async def resend_verification(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Mail a new verification link to the signed-in person."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/settings/account")
    try:
        await limit_mail(request, site, "verify-mail", str(principal.user_id))
    except RateLimited as exc:
        return await account_page(request, site, failed="verify", errors={"verify": exc.detail},
                                  status_code=429, headers=retry_headers(exc))
    async with site.db.transaction() as session:
        user = await current_user(request, session, site)
        if user.email_verified:
            return redirect("/settings/account?sent=already")
        await AccountService(site).send_verification(session, user)
    return redirect("/settings/account?sent=verification")


@get("/confirm-email", include_in_schema=False, name="accounts:confirm-email")
async def confirm_email(request: AnyRequest, site: NamedDependency[Site],
                        token: FromQuery[str | None] = None) -> Template:
    """Open the link mailed to a new address: the account now uses it."""
    if not token:
        return await render(request, site, "verify_email.html", {
            "state": "failed", "change": True,
            "message": "This link is incomplete. Open the full link from the e-mail."}, status_code=400)
    try:
        async with site.db.transaction() as session:
            user = await AccountService(site).confirm_email_change(session, token)
    except HTTPException as exc:
        return await render(request, site, "verify_email.html",
                            {"state": "failed", "change": True, "message": exc.detail}, status_code=400)
    return await render(request, site, "verify_email.html", {"state": "changed", "email": user.email})


# ---------------------------------------------------------------------------
# Public profile
# ---------------------------------------------------------------------------


@get("/users/{user_id:uuid}", include_in_schema=False, name="accounts:profile")
async def public_profile(request: AnyRequest, user_id: FromPath[uuid.UUID],
                         site: NamedDependency[Site]) -> Template:
    """What anyone may see of a person: profile, skills and portfolio."""
    profiles = ProfileService(site)
    async with site.db.reading() as session:
        user = await AccountService(site).get_user(session, user_id)
        if user.status != UserStatus.ACTIVE:
            raise NotFoundException("No such user.")
        person = await withhold_if_hidden(session, await profiles.public_user(session, user))
        page = await profiles.list_portfolio(session, user.id, limit=MAX_PORTFOLIO_ITEMS, cursor=None)
        if person.hidden:
            page.items = []
    principal = principal_of(request)
    profile = person.profile
    return await render(request, site, "profile.html", {
        "person": person, "profile": profile, "bio_html": Markup(profile.bio_html),
        "rate_text": format_rate(profile.hourly_rate), "local_time": local_time(profile.timezone),
        "availability_label": AVAILABILITY.get(profile.availability, profile.availability),
        "role_labels": ROLE_LABELS,
        "is_owner": principal is not None and principal.user_id == person.id,
        "items": [{"item": item, "description_html": Markup(item.description_html)} for item in page.items],
    })


PAGE_ROUTES: list[Any] = [
    login, signup, logout, verify_email, resend_verification, confirm_email, public_profile, *SETTINGS_ROUTES,
]
"""The account pages the accounts plugin registers."""
