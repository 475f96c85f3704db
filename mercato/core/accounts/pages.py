"""The theme's account pages: log-in and sign-up forms, e-mail links, settings (profile,
portfolio, account) and public profiles. Server-rendered forms, no JavaScript needed.

Every page acts on the signed-in person only (never on an id from the form). Forms that
fail re-render with the person's input and the message next to the field (status 400).
Rate limits are counted before a transaction opens (SQLite has one writer). The e-mail and
password forms themselves live in the ``password_auth`` plugin and reuse the helpers here.
"""

from __future__ import annotations

import re
import secrets
import uuid
import zoneinfo
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request, get, post
from litestar.datastructures import Cookie, UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, ValidationException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy import select

from mercato.core.accounts import schemas
from mercato.core.accounts.middleware import csrf_cookie, expired_session_cookie, principal_of, session_cookie
from mercato.core.accounts.models import SessionKind, Skill, User, UserStatus
from mercato.core.accounts.oauth import safe_next
from mercato.core.accounts.profiles import MAX_PORTFOLIO_IMAGES, MAX_PORTFOLIO_ITEMS, ProfileService
from mercato.core.accounts.routes import current_user, delete_files, limit_mail, require_principal
from mercato.core.accounts.services import SIGNUP_ROLES, AccountService, Conflict
from mercato.core.images import store_image
from mercato.core.ratelimit import RateLimited
from mercato.core.site import Site

if TYPE_CHECKING:
    from litestar.datastructures import FormMultiDict
    from sqlalchemy.ext.asyncio import AsyncSession

AnyRequest = Request[Any, Any, Any]
Page = Template | Redirect

PASSWORD_HINT = "At least 8 characters; a passphrase of 3\u20134 words works well."
MAX_PASSWORD_LENGTH = 1024
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "PLN", "INR", "BRL", "MXN")
"""Currencies offered for an hourly rate (all with two decimal places)."""
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "\u20ac", "GBP": "\u00a3", "CAD": "CA$", "AUD": "A$", "INR": "\u20b9",
                    "BRL": "R$", "MXN": "MX$"}
MAX_RATE_MINOR = 100_000_00
AVAILABILITY = {"available": "Available for work", "limited": "Limited availability",
                "unavailable": "Not available"}
ROLE_LABELS = {"client": "Client", "developer": "Developer", "admin": "Admin"}
PROFILE_FIELDS = ("display_name", "headline", "bio", "skills", "hourly_rate", "currency", "location",
                  "timezone", "languages", "availability", "github_url", "website_url")
PORTFOLIO_FIELDS = ("title", "description", "link", "skills")
_AT_FIELD = re.compile(r"at `\$\.([A-Za-z_]+)(\[\d+\])?`")
_MAX_LENGTH = re.compile(r"`(str|array)` of length <= (\d+)")
_AMOUNT = re.compile(r"\d{1,9}(?:[.,]\d{1,2})?")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?")


# ---------------------------------------------------------------------------
# Helpers shared with the password_auth pages
# ---------------------------------------------------------------------------


def form_text(form: FormMultiDict, name: str) -> str:
    """A text field of a submitted form ('' when absent or a file)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_file(form: FormMultiDict, name: str) -> UploadFile | None:
    """A file field of a multipart form, None when no file was chosen."""
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


def errors_of(exc: HTTPException, *, default_field: str = "form") -> dict[str, str]:
    """``{field: message}`` from a service's field error; other errors land on ``default_field``."""
    found: dict[str, str] = {}
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list):
        for item in exc.extra:
            if isinstance(item, dict):
                message = str(item.get("message") or exc.detail)
                field = _AT_FIELD.search(message)
                key = field.group(1) if field else str(item.get("key") or default_field)
                found.setdefault(key, message)
    return found or {default_field: str(exc.detail)}


def schema_errors(exc: msgspec.ValidationError) -> dict[str, str]:
    """msgspec's complaint about a form converted to a request body, in plain words."""
    text = str(exc)
    field = _AT_FIELD.search(text)
    name = field.group(1) if field else "form"
    longest = _MAX_LENGTH.search(text)
    if longest and longest.group(1) == "array":
        message = f"Choose at most {longest.group(2)}."
    elif longest and field and field.group(2):
        message = f"Each entry may have at most {longest.group(2)} characters."
    elif longest:
        message = f"Use at most {longest.group(2)} characters."
    elif "length >= 1" in text:
        message = "This field cannot be empty."
    else:
        message = "This value is not valid."
    return {name: message}


def reauth_errors(exc: HTTPException, *, default_field: str = "form") -> dict[str, str]:
    """:func:`errors_of` for forms that re-ask the password in field ``current_password`` (the
    services may name it ``password``, as the API body does)."""
    errors = errors_of(exc, default_field=default_field)
    if "password" in errors:
        errors.setdefault("current_password", errors.pop("password"))
    return errors


def retry_headers(exc: RateLimited) -> dict[str, str]:
    """The ``Retry-After`` header of a rate-limited answer."""
    return {"Retry-After": str(exc.retry_after)}


async def render(request: AnyRequest, site: Site, template: str, values: dict[str, Any], *,
                 status_code: int = 200, headers: dict[str, str] | None = None) -> Template:
    """A themed page (``accounts/<template>``), optionally with extra headers."""
    response = await site.templates.page(request, f"accounts/{template}", values, status_code=status_code)
    if headers:
        response.headers.update(headers)
    return response


def redirect(url: str, cookies: list[Cookie] | None = None) -> Redirect:
    """A 303 See Other (the answer to a form), optionally setting cookies."""
    response = Redirect(url, status_code=303)
    if cookies:
        response.cookies.extend(cookies)
    return response


def to_login(back: str) -> Redirect:
    """Send someone whose session ended back through the log-in page."""
    return redirect(f"/login?{urlencode({'next': back})}")


async def browser_session_cookies(request: AnyRequest, session: AsyncSession, site: Site,
                                  user: User) -> list[Cookie]:
    """Start a browser session for ``user``: its cookie and a fresh CSRF nonce (call it inside
    the transaction that proved who they are)."""
    service = AccountService(site)
    auth = await service.start_session(session, user, kind=SessionKind.BROWSER,
                                       user_agent=request.headers.get("user-agent", ""))
    token = service.session_cookie_token(user, auth)
    max_age = int((auth.expires_at - auth.created_at).total_seconds())
    return [session_cookie(site, token, max_age), csrf_cookie(site, secrets.token_urlsafe(24))]


def provider_links(site: Site, *, next_url: str, roles: str = "client") -> list[dict[str, str]]:
    """The external sign-in buttons: ``[{id, label, href}]``."""
    return [
        {"id": provider.id, "label": provider.label,
         "href": f"/auth/{provider.id}/login?{urlencode({'next': next_url, 'roles': roles})}"}
        for provider in site.plugins.auth_providers(site)
    ]


def password_auth_enabled(site: Site) -> bool:
    return bool(site.plugins.pm.has_plugin("password_auth"))


async def login_page(request: AnyRequest, site: Site, *, email: str = "", next_url: str = "/",
                     error: str = "", notice: str = "", status_code: int = 200,
                     headers: dict[str, str] | None = None) -> Template:
    """``accounts/login.html``."""
    next_url = safe_next(next_url)
    return await render(request, site, "login.html", {
        "email": email, "next_url": next_url, "error": error, "notice": notice,
        "providers": provider_links(site, next_url=next_url),
        "allow_registration": site.settings.accounts.allow_registration,
    }, status_code=status_code, headers=headers)


async def signup_page(request: AnyRequest, site: Site, *, form: dict[str, Any] | None = None,
                      errors: dict[str, str] | None = None, status_code: int = 200,
                      headers: dict[str, str] | None = None) -> Template:
    """``accounts/signup.html``; ``form`` holds what was typed (``roles`` a list)."""
    values = {"display_name": "", "email": "", "roles": ["client"], **(form or {})}
    roles = ",".join(values["roles"]) or "client"
    return await render(request, site, "signup.html", {
        "form": values, "errors": errors or {}, "password_hint": PASSWORD_HINT,
        "providers": provider_links(site, next_url="/settings/profile?welcome=1", roles=roles),
        "allow_registration": site.settings.accounts.allow_registration,
    }, status_code=status_code, headers=headers)


async def account_page(request: AnyRequest, site: Site, *, failed: str = "",
                       errors: dict[str, str] | None = None, form: dict[str, str] | None = None,
                       flash: list[tuple[str, str]] | None = None, status_code: int = 200,
                       headers: dict[str, str] | None = None) -> Template:
    """``accounts/settings_account.html``; ``failed`` names the form ``errors`` belong to
    (``email``, ``password``, ``delete`` or ``verify``)."""
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        me = await ProfileService(site).me(session, user)
    labels = {provider.id: provider.label for provider in site.plugins.auth_providers(site)}
    return await render(request, site, "settings_account.html", {
        "settings_tab": "account", "me": me, "failed": failed, "errors": errors or {}, "form": form or {},
        "notices": flash or [], "password_hint": PASSWORD_HINT,
        "linked": [labels.get(provider, provider.title()) for provider in me.linked_providers],
        "password_auth_enabled": password_auth_enabled(site),
    }, status_code=status_code, headers=headers)


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def format_amount(minor: int) -> str:
    """``9000`` → ``"90"``, ``9050`` → ``"90.50"``, ``1250000`` → ``"12,500"``."""
    whole, cents = divmod(minor, 100)
    return f"{whole:,}" if cents == 0 else f"{whole:,}.{cents:02d}"


def format_rate(rate: schemas.Money | None) -> str:
    """``$90/hr``; currencies without a symbol here read ``CHF 90/hr``."""
    if rate is None:
        return ""
    symbol = CURRENCY_SYMBOLS.get(rate.currency)
    amount = format_amount(rate.amount)
    return f"{symbol}{amount}/hr" if symbol else f"{rate.currency} {amount}/hr"


def parse_rate(text: str, currency: str) -> tuple[dict[str, Any] | None, str]:
    """An hourly rate typed in major units (``45``, ``62.50``, ``1,200``) → (MoneyIn fields or
    None when empty, error message)."""
    value = text.strip().replace(" ", "").lstrip("$\u20ac\u00a3")
    if not value:
        return None, ""
    if currency not in CURRENCIES:
        return None, "Pick a currency from the list."
    if _THOUSANDS.fullmatch(value):
        value = value.replace(",", "")
    elif _AMOUNT.fullmatch(value):
        value = value.replace(",", ".")
    else:
        return None, "Enter an amount such as 45 or 62.50."
    try:
        minor = int(Decimal(value) * 100)
    except InvalidOperation:
        return None, "Enter an amount such as 45 or 62.50."
    if minor > MAX_RATE_MINOR:
        return None, f"Enter at most {format_amount(MAX_RATE_MINOR)}."
    return {"amount": minor, "currency": currency}, ""


def split_list(text: str) -> list[str]:
    """``"Python, react ,"`` → ``["Python", "react"]``."""
    return [part.strip() for part in text.split(",") if part.strip()]


@lru_cache(maxsize=1)
def timezone_names() -> tuple[str, ...]:
    """IANA zones people pick from (no legacy ``Etc/``, ``US/``… aliases)."""
    legacy = ("Etc/", "SystemV/", "US/", "posix/", "right/", "Canada/", "Mexico/", "Brazil/", "Chile/")
    zones = {zone for zone in zoneinfo.available_timezones() if "/" in zone and not zone.startswith(legacy)}
    return ("UTC", *sorted(zones))


def local_time(zone: str) -> str:
    """The time now in ``zone`` (``"14:05"``), '' when unknown."""
    try:
        return datetime.now(zoneinfo.ZoneInfo(zone)).strftime("%H:%M") if zone else ""
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return ""


async def skill_names(session: AsyncSession) -> list[dict[str, Any]]:
    """Every skill's name and aliases, for the pickers' suggestions."""
    rows = (await session.execute(select(Skill).order_by(Skill.name))).scalars()
    return [{"name": skill.name, "aliases": list(skill.aliases)} for skill in rows]


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
# Settings: profile
# ---------------------------------------------------------------------------


def _profile_form(me: schemas.Me) -> dict[str, Any]:
    profile = me.profile
    rate = profile.hourly_rate
    return {
        "display_name": me.display_name, "roles": list(me.roles), "headline": profile.headline,
        "bio": profile.bio, "skills": ", ".join(skill.name for skill in profile.skills),
        "hourly_rate": format_amount(rate.amount).replace(",", "") if rate else "",
        "currency": rate.currency if rate else "USD", "location": profile.location,
        "timezone": profile.timezone, "languages": ", ".join(profile.languages),
        "availability": profile.availability, "github_url": profile.github_url,
        "website_url": profile.website_url,
    }


_PROFILE_FLASH = {
    "1": "Your profile is saved.",
    "avatar": "Your photo is updated.",
    "avatar-removed": "Your photo is removed.",
}


async def profile_settings_page(request: AnyRequest, site: Site, *, form: dict[str, Any] | None = None,
                                errors: dict[str, str] | None = None,
                                flash: list[tuple[str, str]] | None = None,
                                status_code: int = 200) -> Template:
    """``accounts/settings_profile.html`` with the saved profile or what was typed."""
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        me = await ProfileService(site).me(session, user)
        skills = await skill_names(session)
    values = form if form is not None else _profile_form(me)
    zones = timezone_names()
    if values.get("timezone") and values["timezone"] not in zones:
        zones = (values["timezone"], *zones)
    return await render(request, site, "settings_profile.html", {
        "settings_tab": "profile", "me": me, "form": values, "errors": errors or {}, "skills": skills,
        "timezones": zones, "currencies": CURRENCIES, "availability": AVAILABILITY,
        "notices": flash or [],
    }, status_code=status_code)


@get("/settings", include_in_schema=False, name="accounts:settings")
async def settings_index(request: AnyRequest) -> Redirect:
    """Settings start with the profile."""
    require_principal(request)
    return redirect("/settings/profile")


@get("/settings/profile", include_in_schema=False, name="accounts:settings-profile")
async def profile_settings(request: AnyRequest, site: NamedDependency[Site],
                           saved: FromQuery[str | None] = None,
                           welcome: FromQuery[str | None] = None) -> Template:
    """Edit your profile: name, roles, headline, bio, skills, rate, links, photo."""
    require_principal(request)
    flash: list[tuple[str, str]] = []
    if welcome:
        flash.append(("success", "Welcome! Your account is ready. Tell people about yourself below."))
    if saved in _PROFILE_FLASH:
        flash.append(("success", _PROFILE_FLASH[saved]))
    return await profile_settings_page(request, site, flash=flash)


@post("/settings/profile", include_in_schema=False, name="accounts:settings-profile-save")
async def save_profile(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Save the profile form; on a mistake show it again with the input kept."""
    if principal_of(request) is None:
        return to_login("/settings/profile")
    form = await request.form()
    values: dict[str, Any] = {name: form_text(form, name) for name in PROFILE_FIELDS}
    values["roles"] = [role for role in form.getall("roles", []) if role in SIGNUP_ROLES]
    errors: dict[str, str] = {}
    if not values["roles"]:
        errors["roles"] = "Choose client, developer or both."
    if values["availability"] not in AVAILABILITY:
        errors["availability"] = "Pick one of the choices."
    rate, problem = parse_rate(values["hourly_rate"], values["currency"])
    if problem:
        errors["hourly_rate"] = problem
    changes: schemas.MeUpdate | None = None
    if not errors:
        body: dict[str, Any] = {name: values[name] for name in (
            "display_name", "headline", "bio", "location", "timezone", "availability", "github_url",
            "website_url")}
        body.update(roles=values["roles"], skills=split_list(values["skills"]),
                    languages=split_list(values["languages"]), hourly_rate=rate)
        try:
            changes = msgspec.convert(body, schemas.MeUpdate)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    if changes is not None and not errors:
        try:
            async with site.db.transaction() as session:
                user = await current_user(request, session, site)
                await ProfileService(site).update(session, user, changes)
        except ValidationException as exc:
            errors.update(errors_of(exc))
    if errors:
        return await profile_settings_page(request, site, form=values, errors=errors, status_code=400)
    return redirect("/settings/profile?saved=1")


@post("/settings/avatar", include_in_schema=False, name="accounts:settings-avatar")
async def upload_avatar(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Replace your photo with the uploaded image."""
    if principal_of(request) is None:
        return to_login("/settings/profile")
    profiles = ProfileService(site)
    upload = form_file(await request.form(), "avatar")
    if upload is None:
        return await profile_settings_page(request, site, errors={"avatar": "Choose an image to upload."},
                                           status_code=400)
    try:
        stored = await store_image(profiles.storage, await upload.read(), folder="avatars",
                                   settings=site.settings.uploads, max_side=512)
    except HTTPException as exc:  # too large, not an image
        return await profile_settings_page(request, site, errors={"avatar": str(exc.detail)},
                                           status_code=exc.status_code)
    try:
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            old = await profiles.set_avatar(session, user, stored.key)
    except Exception:
        await delete_files(site, [stored.key])
        raise
    await delete_files(site, [old] if old else [])
    return redirect("/settings/profile?saved=avatar")


@post("/settings/avatar/delete", include_in_schema=False, name="accounts:settings-avatar-delete")
async def remove_avatar(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Remove your photo (people see your initials)."""
    if principal_of(request) is None:
        return to_login("/settings/profile")
    async with site.db.transaction() as session:
        user = await current_user(request, session, site)
        old = await ProfileService(site).set_avatar(session, user, None)
    await delete_files(site, [old] if old else [])
    return redirect("/settings/profile?saved=avatar-removed")


# ---------------------------------------------------------------------------
# Settings: portfolio
# ---------------------------------------------------------------------------


_PORTFOLIO_FLASH = {
    "added": "The item is added to your portfolio.",
    "image": "The image is added.",
    "deleted": "The item is removed from your portfolio.",
}


async def portfolio_settings_page(request: AnyRequest, site: Site, *, form: dict[str, str] | None = None,
                                  errors: dict[str, str] | None = None,
                                  item_errors: dict[uuid.UUID, str] | None = None,
                                  flash: list[tuple[str, str]] | None = None,
                                  status_code: int = 200) -> Template:
    """``accounts/settings_portfolio.html``: your items and the form for a new one."""
    profiles = ProfileService(site)
    async with site.db.reading() as session:
        user_id = (await current_user(request, session, site)).id  # the row expires when reading ends
        page = await profiles.list_portfolio(session, user_id, limit=MAX_PORTFOLIO_ITEMS, cursor=None)
        skills = await skill_names(session)
    return await render(request, site, "settings_portfolio.html", {
        "settings_tab": "portfolio", "user_id": user_id,
        "items": [{"item": item, "description_html": Markup(item.description_html)} for item in page.items],
        "form": form or dict.fromkeys(PORTFOLIO_FIELDS, ""), "errors": errors or {},
        "item_errors": item_errors or {}, "skills": skills, "notices": flash or [],
        "max_items": MAX_PORTFOLIO_ITEMS, "max_images": MAX_PORTFOLIO_IMAGES,
    }, status_code=status_code)


@get("/settings/portfolio", include_in_schema=False, name="accounts:settings-portfolio")
async def portfolio_settings(request: AnyRequest, site: NamedDependency[Site],
                             saved: FromQuery[str | None] = None) -> Template:
    """Your portfolio items, with images, and a form to add one."""
    require_principal(request)
    flash = [("success", _PORTFOLIO_FLASH[saved])] if saved in _PORTFOLIO_FLASH else []
    return await portfolio_settings_page(request, site, flash=flash)


@post("/settings/portfolio", include_in_schema=False, name="accounts:settings-portfolio-add")
async def add_portfolio_item(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Add an item (title, description, link, skills and optionally its first image)."""
    if principal_of(request) is None:
        return to_login("/settings/portfolio")
    profiles = ProfileService(site)
    form = await request.form()
    values = {name: form_text(form, name) for name in PORTFOLIO_FIELDS}
    errors: dict[str, str] = {}
    status_code = 400
    body: schemas.PortfolioItemIn | None = None
    try:
        body = msgspec.convert({"title": values["title"], "description": values["description"],
                                "link": values["link"], "skills": split_list(values["skills"])},
                               schemas.PortfolioItemIn)
    except msgspec.ValidationError as exc:
        errors.update(schema_errors(exc))
    upload = form_file(form, "image")
    stored = None
    if body is not None and upload is not None:
        try:
            stored = await store_image(profiles.storage, await upload.read(), folder="portfolio",
                                       settings=site.settings.uploads)
        except HTTPException as exc:
            errors["image"] = str(exc.detail)
            status_code = exc.status_code
    item_id = None
    if body is not None and not errors:
        try:
            async with site.db.transaction() as session:
                user = await current_user(request, session, site)
                item = await profiles.add_item(session, user, body)
                if stored is not None:
                    profiles.add_image(item, key=stored.key, width=stored.width, height=stored.height)
                item_id = item.id
        except ValidationException as exc:
            errors.update(errors_of(exc, default_field="title"))
        except Exception:
            await delete_files(site, [stored.key] if stored else [])
            raise
    if errors:
        await delete_files(site, [stored.key] if stored else [])
        return await portfolio_settings_page(request, site, form=values, errors=errors,
                                             status_code=status_code)
    return redirect(f"/settings/portfolio?saved=added#item-{item_id}")


@post("/settings/portfolio/{item_id:uuid}/images", include_in_schema=False,
      name="accounts:settings-portfolio-image")
async def add_portfolio_image(request: AnyRequest, item_id: FromPath[uuid.UUID],
                              site: NamedDependency[Site]) -> Page:
    """Add an image to one of your items."""
    if principal_of(request) is None:
        return to_login("/settings/portfolio")
    profiles = ProfileService(site)
    async with site.db.reading() as session:  # someone else's item is a 404 before any image work
        await profiles.own_item(session, await current_user(request, session, site), item_id)
    upload = form_file(await request.form(), "image")
    if upload is None:
        return await portfolio_settings_page(request, site, status_code=400,
                                             item_errors={item_id: "Choose an image to upload."})
    try:
        stored = await store_image(profiles.storage, await upload.read(), folder="portfolio",
                                   settings=site.settings.uploads)
    except HTTPException as exc:
        return await portfolio_settings_page(request, site, item_errors={item_id: str(exc.detail)},
                                             status_code=exc.status_code)
    try:
        async with site.db.transaction() as session:
            item = await profiles.own_item(session, await current_user(request, session, site), item_id)
            profiles.add_image(item, key=stored.key, width=stored.width, height=stored.height)
    except ValidationException as exc:
        await delete_files(site, [stored.key])
        return await portfolio_settings_page(request, site, item_errors={item_id: str(exc.detail)},
                                             status_code=400)
    except Exception:
        await delete_files(site, [stored.key])
        raise
    return redirect(f"/settings/portfolio?saved=image#item-{item_id}")


@post("/settings/portfolio/{item_id:uuid}/delete", include_in_schema=False,
      name="accounts:settings-portfolio-delete")
async def delete_portfolio_item(request: AnyRequest, item_id: FromPath[uuid.UUID],
                                site: NamedDependency[Site]) -> Redirect:
    """Remove one of your items and its images."""
    if principal_of(request) is None:
        return to_login("/settings/portfolio")
    async with site.db.transaction() as session:
        user = await current_user(request, session, site)
        item = await ProfileService(site).own_item(session, user, item_id)
        keys = [image["key"] for image in item.images]
        await session.delete(item)
    await delete_files(site, keys)
    return redirect("/settings/portfolio?saved=deleted")


# ---------------------------------------------------------------------------
# Settings: account
# ---------------------------------------------------------------------------


_ACCOUNT_FLASH = {
    "password": "Your password is changed. Your other sessions are signed out.",
    "already": "Your e-mail address is already verified.",
}


@get("/settings/account", include_in_schema=False, name="accounts:settings-account")
async def account_settings(request: AnyRequest, site: NamedDependency[Site],
                           saved: FromQuery[str | None] = None,
                           sent: FromQuery[str | None] = None) -> Template:
    """Your e-mail address, password, linked providers, and deleting the account."""
    require_principal(request)
    flash: list[tuple[str, str]] = []
    if saved in _ACCOUNT_FLASH:
        flash.append(("success", _ACCOUNT_FLASH[saved]))
    if sent == "verification":
        flash.append(("success", "We sent a new verification link. Check your inbox."))
    elif sent == "email":
        flash.append(("success", "We sent a confirmation link to the new address. Your address changes "
                                 "when you open it."))
    elif sent == "already":
        flash.append(("info", _ACCOUNT_FLASH["already"]))
    return await account_page(request, site, flash=flash)


@post("/settings/account", include_in_schema=False, name="accounts:settings-account-save")
async def save_account(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """``action=email``: ask to change the address; ``action=delete``: delete the account."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/settings/account")
    form = await request.form()
    action = form_text(form, "action")
    password = form_text(form, "current_password")
    service = AccountService(site)
    if action == "email":
        new_email = form_text(form, "new_email").strip()
        if not new_email:
            return await account_page(request, site, failed="email", form={"new_email": new_email},
                                      errors={"new_email": "Enter the new address."}, status_code=400)
        try:
            await limit_mail(request, site, "change-email", str(principal.user_id))
            async with site.db.transaction() as session:
                user = await current_user(request, session, site)
                await service.require_reauthentication(session, user, password=password,
                                                       session_id=principal.session_id)
                await service.request_email_change(session, user, new_email)
        except (ValidationException, Conflict, RateLimited, NotAuthorizedException) as exc:
            headers = retry_headers(exc) if isinstance(exc, RateLimited) else None
            field = "new_email" if isinstance(exc, Conflict) else "form"
            status = exc.status_code if isinstance(exc, Conflict | RateLimited) else 400
            return await account_page(request, site, failed="email", form={"new_email": new_email},
                                      errors=reauth_errors(exc, default_field=field), status_code=status,
                                      headers=headers)
        return redirect("/settings/account?sent=email")
    if action == "delete":
        if form_text(form, "confirm") != "yes":
            return await account_page(request, site, failed="delete", status_code=400, errors={
                "confirm": "Tick the box to confirm that you want to delete your account."})
        try:
            async with site.db.transaction() as session:
                user = await current_user(request, session, site)
                await service.require_reauthentication(session, user, password=password,
                                                       session_id=principal.session_id)
                files = await service.delete_account(session, user)
        except (ValidationException, NotAuthorizedException) as exc:
            return await account_page(request, site, failed="delete", errors=reauth_errors(exc),
                                      status_code=400)
        await delete_files(site, files)
        return redirect("/?account=deleted", [expired_session_cookie(site)])
    return await account_page(request, site, failed="form", errors={"form": "Unknown action."},
                              status_code=400)


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
        person = await profiles.public_user(session, user)
        page = await profiles.list_portfolio(session, user.id, limit=MAX_PORTFOLIO_ITEMS, cursor=None)
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
    login, signup, logout, verify_email, resend_verification, confirm_email, settings_index, profile_settings,
    save_profile, upload_avatar, remove_avatar, portfolio_settings, add_portfolio_item, add_portfolio_image,
    delete_portfolio_item, account_settings, save_account, public_profile,
]
"""The account pages the accounts plugin registers."""
