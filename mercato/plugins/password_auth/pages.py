"""The theme's e-mail + password forms: log in, sign up, forgotten password, reset link and
password change. The forms are shown by the accounts pages; these handle what they send.

Rate limits are counted before any transaction opens; a limited request re-renders its form
with the wait (429 and ``Retry-After``). Mistakes re-render the form with the message next
to the field and what was typed (never the password).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, PermissionDeniedException, ValidationException
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from mercato.core.accounts.forms import (
    MAX_PASSWORD_LENGTH,
    PASSWORD_HINT,
    account_page,
    browser_session_cookies,
    errors_of,
    form_text,
    login_page,
    redirect,
    render,
    retry_headers,
    signup_page,
    to_login,
)
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.oauth import safe_next
from mercato.core.accounts.routes import current_user, limit_mail
from mercato.core.accounts.services import SIGNUP_ROLES, AccountService, Conflict
from mercato.core.ratelimit import RateLimited
from mercato.core.site import Site
from mercato.plugins.password_auth.routes import LOGIN_FAILED, limit_login, limit_registration

AnyRequest = Request[Any, Any, Any]
SUSPENDED = "This account is suspended. Contact the marketplace's support."
RESET_SENT = "If an account uses this address, we sent it a link to choose a new password."
TOO_LONG = f"Use at most {MAX_PASSWORD_LENGTH} characters."


@post("/login", include_in_schema=False, name="password_auth:login")
async def login(request: AnyRequest, site: NamedDependency[Site]) -> Template | Redirect:
    """Check e-mail and password; on success start a browser session and go to ``next``."""
    form = await request.form()
    email, password = form_text(form, "email").strip(), form_text(form, "password")
    next_url = safe_next(form_text(form, "next"))
    if not email or not password or len(password) > MAX_PASSWORD_LENGTH:
        return await login_page(request, site, email=email, next_url=next_url, error=LOGIN_FAILED,
                                status_code=400)
    try:
        await limit_login(request, site, email)
    except RateLimited as exc:
        return await login_page(request, site, email=email, next_url=next_url, error=exc.detail,
                                status_code=429, headers=retry_headers(exc))
    service = AccountService(site)
    async with site.db.transaction() as session:
        user = await service.authenticate(session, email, password)
        if user is not None and user.is_active:
            cookies = await browser_session_cookies(request, session, site, user)
            return redirect(next_url, cookies)
    error, status = (SUSPENDED, 403) if user is not None else (LOGIN_FAILED, 400)
    return await login_page(request, site, email=email, next_url=next_url, error=error, status_code=status)


@post("/signup", include_in_schema=False, name="password_auth:signup")
async def signup(request: AnyRequest, site: NamedDependency[Site]) -> Template | Redirect:
    """Create an account, mail the verification link and sign the person in."""
    if not site.settings.accounts.allow_registration:
        raise PermissionDeniedException("Sign-up is closed on this marketplace.")
    form = await request.form()
    values: dict[str, Any] = {
        "display_name": form_text(form, "display_name"), "email": form_text(form, "email").strip(),
        "roles": [role for role in form.getall("roles", []) if role in SIGNUP_ROLES],
    }
    password = form_text(form, "password")
    errors: dict[str, str] = {}
    if not values["roles"]:
        errors["roles"] = "Choose client, developer or both."
    if not values["email"]:
        errors["email"] = "Enter your e-mail address."
    if not password:
        errors["password"] = "Choose a password."
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["password"] = TOO_LONG
    if errors:
        return await signup_page(request, site, form=values, errors=errors, status_code=400)
    try:
        await limit_registration(request, site)
    except RateLimited as exc:
        return await signup_page(request, site, form=values, errors={"form": exc.detail}, status_code=429,
                                 headers=retry_headers(exc))
    service = AccountService(site)
    try:
        async with site.db.transaction() as session:
            user = await service.register(session, email=values["email"], display_name=values["display_name"],
                                          roles=values["roles"], password=password)
            await service.send_verification(session, user)
            cookies = await browser_session_cookies(request, session, site, user)
    except Conflict as exc:
        return await signup_page(request, site, form=values, errors={"email": exc.detail}, status_code=409)
    except ValidationException as exc:
        return await signup_page(request, site, form=values, errors=errors_of(exc), status_code=400)
    except HTTPException as exc:  # the mail could not be sent: nothing was created
        return await signup_page(request, site, form=values, errors={"form": exc.detail},
                                 status_code=exc.status_code)
    return redirect("/settings/profile?welcome=1", cookies)


@get("/forgot-password", include_in_schema=False, name="password_auth:forgot-password")
async def forgot_password(request: AnyRequest, site: NamedDependency[Site]) -> Template:
    """Ask for a password reset link."""
    return await render(request, site, "forgot_password.html", {"email": "", "errors": {}, "sent": False})


@post("/forgot-password", include_in_schema=False, name="password_auth:forgot-password-send")
async def send_reset_link(request: AnyRequest, site: NamedDependency[Site]) -> Template:
    """Mail a reset link when the address has an account; the answer is the same either way."""
    email = form_text(await request.form(), "email").strip()
    if not email or len(email) > 320:
        errors = {"email": "Enter the e-mail address you signed up with."}
        return await render(request, site, "forgot_password.html",
                            {"email": email, "errors": errors, "sent": False}, status_code=400)
    try:
        await limit_mail(request, site, "reset-mail", email)
        async with site.db.transaction() as session:
            await AccountService(site).request_password_reset(session, email)
    except RateLimited as exc:
        return await render(request, site, "forgot_password.html",
                            {"email": email, "errors": {"form": exc.detail}, "sent": False},
                            status_code=429, headers=retry_headers(exc))
    except HTTPException as exc:
        return await render(request, site, "forgot_password.html",
                            {"email": email, "errors": {"form": exc.detail}, "sent": False},
                            status_code=exc.status_code)
    return await render(request, site, "forgot_password.html",
                        {"email": email, "errors": {}, "sent": True, "message": RESET_SENT})


@get("/reset-password", include_in_schema=False, name="password_auth:reset-password")
async def reset_password_form(request: AnyRequest, site: NamedDependency[Site],
                              token: FromQuery[str | None] = None) -> Template:
    """The new-password form the reset link opens."""
    errors = {} if token else {"form": "This link is incomplete. Open the full link from the e-mail."}
    return await render(request, site, "reset_password.html",
                        {"token": token or "", "errors": errors, "password_hint": PASSWORD_HINT},
                        status_code=200 if token else 400)


@post("/reset-password", include_in_schema=False, name="password_auth:reset-password-save")
async def reset_password(request: AnyRequest, site: NamedDependency[Site]) -> Template | Redirect:
    """Set the new password (every session ends) and go to the log-in page."""
    form = await request.form()
    token, password = form_text(form, "token"), form_text(form, "new_password")
    errors: dict[str, str] = {}
    if not password:
        errors["new_password"] = "Choose a new password."
    elif len(password) > MAX_PASSWORD_LENGTH:
        errors["new_password"] = TOO_LONG
    if not errors:
        try:
            async with site.db.transaction() as session:
                await AccountService(site).reset_password(session, token, password)
        except ValidationException as exc:
            errors = errors_of(exc, default_field="new_password")
        except HTTPException as exc:  # expired or used link, suspended account
            errors = {"form": exc.detail, "expired": "1"}
    if errors:
        return await render(request, site, "reset_password.html",
                            {"token": token, "errors": errors, "password_hint": PASSWORD_HINT},
                            status_code=400)
    return redirect("/login?reset=1")


@post("/settings/password", include_in_schema=False, name="password_auth:change-password")
async def change_password(request: AnyRequest, site: NamedDependency[Site]) -> Template | Redirect:
    """Change your password (after the current one); your other sessions end."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/settings/account")
    form = await request.form()
    current, new = form_text(form, "current_password"), form_text(form, "new_password")
    if not new or len(new) > MAX_PASSWORD_LENGTH or len(current) > MAX_PASSWORD_LENGTH:
        message = "Choose a new password." if not new else TOO_LONG
        return await account_page(request, site, failed="password", errors={"new_password": message},
                                  status_code=400)
    try:
        await limit_login(request, site, str(principal.user_id))
    except RateLimited as exc:
        return await account_page(request, site, failed="password", errors={"form": exc.detail},
                                  status_code=429, headers=retry_headers(exc))
    service = AccountService(site)
    try:
        async with site.db.transaction() as session:
            user = await current_user(request, session, site)
            await service.check_password(user, current)
            await service.set_password(session, user, new, keep_session=principal.session_id)
    except ValidationException as exc:
        return await account_page(request, site, failed="password", errors=errors_of(exc), status_code=400)
    return redirect("/settings/account?saved=password")


PAGE_ROUTES: list[Any] = [
    login, signup, forgot_password, send_reset_link, reset_password_form, reset_password, change_password,
]
"""The form handlers the ``password_auth`` plugin registers."""
