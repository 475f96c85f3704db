"""Helpers of the theme's account pages: reading forms, turning service errors into
field messages, rendering, formatting money and time, and the shared page builders."""

from __future__ import annotations

import re
import secrets
import zoneinfo
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import msgspec
from litestar import Request
from litestar.datastructures import Cookie, UploadFile
from litestar.exceptions import HTTPException, ValidationException
from litestar.response import Redirect, Template
from markupsafe import Markup
from sqlalchemy import select

from mercato.core.accounts import schemas
from mercato.core.accounts.middleware import csrf_cookie, session_cookie
from mercato.core.accounts.models import SessionKind, Skill, User
from mercato.core.accounts.oauth import safe_next
from mercato.core.accounts.profiles import ProfileService
from mercato.core.accounts.routes import current_user
from mercato.core.accounts.services import AccountService
from mercato.core.memo import memo
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


def parse_rate(text: str, currency: str, *,
               maximum: int = MAX_RATE_MINOR) -> tuple[dict[str, Any] | None, str]:
    """An amount typed in major units (``45``, ``62.50``, ``1,200``) → (MoneyIn fields or None
    when empty, error message). ``maximum`` is in minor units (default: an hourly rate's)."""
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
    if minor > maximum:
        return None, f"Enter at most {format_amount(maximum)}."
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


class SkillChoices(list[dict[str, Any]]):
    """Every skill's name and aliases (``{name, aliases}``), for the pickers' suggestions."""

    @cached_property
    def options_html(self) -> Markup:
        """The ``<option>``s of the pickers' ``<datalist>``, rendered once: a page with a picker
        would otherwise spend longer on these hundreds of lines than on everything else."""
        options = []
        for skill in self:
            aliases = skill["aliases"]
            extra = ""
            if aliases:
                extra = Markup(' label="{}" data-aliases="{}"').format(", ".join(aliases), "|".join(aliases))
            options.append(Markup('<option value="{}"{}></option>').format(skill["name"], extra))
        return Markup("\n").join(options)


async def skill_names(session: AsyncSession, site: Site | None = None) -> SkillChoices:
    """Every skill's name and aliases; with ``site``, kept a minute (see ``memo``)."""
    if site is not None:
        return await memo(site, "accounts.skill_choices", lambda: skill_names(session))
    rows = (await session.execute(select(Skill.name, Skill.aliases).order_by(Skill.name))).all()
    return SkillChoices({"name": name, "aliases": list(aliases)} for name, aliases in rows)


