"""The theme's settings pages: profile (with avatar), portfolio and account.

Every page acts on the signed-in person only (never on an id from the form). Forms that
fail re-render with the person's input and the message next to the field (status 400)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template
from markupsafe import Markup

from mercato.core.accounts import schemas
from mercato.core.accounts.middleware import expired_session_cookie, principal_of
from mercato.core.accounts.profiles import MAX_PORTFOLIO_IMAGES, MAX_PORTFOLIO_ITEMS, ProfileService
from mercato.core.accounts.routes import current_user, delete_files, limit_mail, require_principal
from mercato.core.accounts.services import SIGNUP_ROLES, AccountService, Conflict
from mercato.core.images import store_image
from mercato.core.ratelimit import RateLimited
from mercato.core.site import Site

if TYPE_CHECKING:
    pass
from mercato.core.accounts.forms import (
    AVAILABILITY,
    CURRENCIES,
    PORTFOLIO_FIELDS,
    PROFILE_FIELDS,
    AnyRequest,
    Page,
    account_page,
    errors_of,
    form_file,
    form_text,
    format_amount,
    parse_rate,
    reauth_errors,
    redirect,
    render,
    retry_headers,
    schema_errors,
    skill_names,
    split_list,
    timezone_names,
    to_login,
)

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
        skills = await skill_names(session, site)
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
        skills = await skill_names(session, site)
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


SETTINGS_ROUTES: list[Any] = [
    settings_index, profile_settings, save_profile, upload_avatar, remove_avatar, portfolio_settings,
    add_portfolio_item, add_portfolio_image, delete_portfolio_item, account_settings, save_account,
]
"""The settings pages the accounts plugin registers."""
