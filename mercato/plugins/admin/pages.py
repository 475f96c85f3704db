"""The admin theme pages under ``/admin``: signed out → the login page; without the admin
role → a 403 page. Every form posts back and redirects, so nothing needs JavaScript."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery

from mercato.core.accounts.forms import AnyRequest, Page, errors_of, form_text, redirect, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.services import AccountService
from mercato.core.catalog.display import format_money, plain_errors, refused
from mercato.core.moderation.audit import audit_page, record
from mercato.core.moderation.reports import REASON_LABELS, ReportService
from mercato.core.moderation.site_settings import site_settings
from mercato.core.site import Site

from .access import require_admin
from .charts import bar_chart
from .routes import audit_out, reports_out, settings_out
from .service import ROLES, AdminService, admin_user
from .stats import Series, build_stats

NOTICES = {
    "hide": "Hidden.",
    "dismiss": "Report dismissed.",
    "suspend": "Hidden, and its owner is suspended.",
    "approve": "Approved and published.",
    "reject": "Sent back to draft.",
    "saved": "Settings saved.",
    "suspended": "Suspended and signed out.",
    "reinstated": "Reinstated.",
    "verified": "Address verified.",
    "roles": "Roles saved.",
}


async def _page(
    request: AnyRequest,
    site: Site,
    template: str,
    values: dict[str, Any],
    *,
    status_code: int = 200,
    done: str | None = None,
) -> Page:
    notice = NOTICES.get(done or "")
    values = {
        "notices": [("success", notice)] if notice else [],
        "section": template.split("/")[-1][:-5],
        "disputes_admin": site.plugins.pm.has_plugin("disputes"),
        **values,
    }
    return await site.templates.page(request, template, values, status_code=status_code)


def _money_label(series: Series) -> Any:
    if series.unit == "count":
        return str
    return lambda value: format_money(value, series.unit)


def _tick(series: Series, index: int) -> str:
    return series.points[index].start.strftime("%d %b")


@get("/admin", include_in_schema=False, name="admin:dashboard")
async def dashboard(
    request: AnyRequest, site: NamedDependency[Site], done: FromQuery[str | None] = None
) -> Page:
    """KPIs, charts and what needs attention."""
    if principal_of(request) is None:
        return to_login("/admin")
    reports = ReportService(site)
    async with site.db.reading() as session:
        await require_admin(request, session, site)
        stats = await build_stats(session, with_disputes=site.plugins.pm.has_plugin("disputes"))
        open_reports = await reports_out(
            site, session, (await reports.page(session, status="open", limit=5, cursor=None))[0]
        )
        pending, _ = await AdminService(site).pending_listings(
            session, status="pending_approval", limit=5, cursor=None
        )
        pending_rows = [{"id": x.id, "title": x.title} for x in pending]
    charts = [
        (s.name + " · last 30 days", bar_chart(s, label=_money_label(s), tick=_tick)) for s in stats.daily
    ]
    charts += [
        (s.name + " · last 12 weeks", bar_chart(s, label=_money_label(s), tick=_tick)) for s in stats.weekly
    ]
    return await _page(
        request,
        site,
        "admin/dashboard.html",
        {
            "stats": stats,
            "charts": charts,
            "open_reports": open_reports,
            "pending": pending_rows,
            "money": format_money,
            "reasons": REASON_LABELS,
        },
        done=done,
    )


@get("/admin/users", include_in_schema=False, name="admin:users")
async def users(
    request: AnyRequest,
    site: NamedDependency[Site],
    q: FromQuery[str | None] = None,
    role: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/users")
    async with site.db.reading() as session:
        await require_admin(request, session, site)
        page, next_cursor = await AdminService(site).users(
            session,
            q=q,
            role=role if role in ROLES else None,
            status=status if status in ("active", "suspended") else None,
            limit=25,
            cursor=cursor,
        )
        rows = [admin_user(u) for u in page]
    return await _page(
        request,
        site,
        "admin/users.html",
        {"rows": rows, "q": q or "", "role": role or "", "status": status or "", "next_cursor": next_cursor},
    )


async def _user_page(
    request: AnyRequest,
    site: Site,
    user_id: uuid.UUID,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> Page:
    async with site.db.reading() as session:
        await require_admin(request, session, site)
        person = admin_user(await AdminService(site).user(session, user_id))
        entries, _ = await audit_page(
            session, subject_type="user", subject_id=str(user_id), limit=20, cursor=None
        )
        audit = [audit_out(e) for e in entries]
    return await _page(
        request,
        site,
        "admin/user.html",
        {"person": person, "audit": audit, "errors": errors or {}, "roles": ROLES},
        status_code=status_code,
        done=done,
    )


@get("/admin/users/{user_id:uuid}", include_in_schema=False, name="admin:user")
async def user(
    request: AnyRequest,
    user_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    done: FromQuery[str | None] = None,
) -> Page:
    if principal_of(request) is None:
        return to_login(f"/admin/users/{user_id}")
    return await _user_page(request, site, user_id, done=done)


@post("/admin/users/{user_id:uuid}", include_in_schema=False, name="admin:user-action")
async def user_action(request: AnyRequest, user_id: FromPath[uuid.UUID], site: NamedDependency[Site]) -> Page:
    """``action``: suspend (with a reason), reinstate, verify, or roles."""
    if principal_of(request) is None:
        return to_login(f"/admin/users/{user_id}")
    form = await request.form()
    action, reason = form_text(form, "action"), form_text(form, "reason").strip()
    if action == "suspend" and not reason:
        return await _user_page(request, site, user_id, errors={"reason": "Give a reason."}, status_code=400)
    service = AdminService(site)
    try:
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            target = await service.user(session, user_id)
            if action == "suspend":
                if target.id == admin.id:
                    return await _user_page(
                        request,
                        site,
                        user_id,
                        status_code=400,
                        errors={"reason": "You cannot suspend yourself."},
                    )
                await AccountService(site).suspend(session, target, reason=reason, actor_id=admin.id)
                record(session, admin.id, "user.suspend", "user", target.id, reason=reason)
                done = "suspended"
            elif action == "reinstate":
                await AccountService(site).reinstate(session, target, actor_id=admin.id)
                record(session, admin.id, "user.reinstate", "user", target.id, reason=reason)
                done = "reinstated"
            elif action == "verify":
                await service.verify(session, admin, target)
                done = "verified"
            else:
                roles = [r for r in form.getall("roles", []) if r in ROLES]
                await service.set_roles(session, admin, target, roles)
                done = "roles"
    except HTTPException as exc:
        if not refused(exc) or exc.status_code == 403:
            raise
        errors = plain_errors(errors_of(exc, default_field="form"))
        return await _user_page(request, site, user_id, errors=errors, status_code=exc.status_code)
    return redirect(f"/admin/users/{user_id}?done={done}")


@get("/admin/reports", include_in_schema=False, name="admin:reports")
async def reports(
    request: AnyRequest,
    site: NamedDependency[Site],
    status: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    done: FromQuery[str | None] = None,
) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/reports")
    status = status if status in ("open", "hidden", "dismissed", "suspended") else "open"
    async with site.db.reading() as session:
        await require_admin(request, session, site)
        page, next_cursor = await ReportService(site).page(session, status=status, limit=25, cursor=cursor)
        rows = await reports_out(site, session, page)
    return await _page(
        request,
        site,
        "admin/reports.html",
        {"rows": rows, "status": status, "next_cursor": next_cursor, "reasons": REASON_LABELS},
        done=done,
    )


@post("/admin/reports/{report_id:uuid}", include_in_schema=False, name="admin:report-decide")
async def decide(request: AnyRequest, report_id: FromPath[uuid.UUID], site: NamedDependency[Site]) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/reports")
    form = await request.form()
    action, note = form_text(form, "action"), form_text(form, "note").strip()
    back = (
        form_text(form, "back")
        if form_text(form, "back") in ("/admin", "/admin/reports")
        else "/admin/reports"
    )
    async with site.db.transaction() as session:
        admin = await require_admin(request, session, site)
        await ReportService(site).decide(session, admin.id, report_id, action, note)
    return redirect(f"{back}?done={action}")


@get("/admin/listings", include_in_schema=False, name="admin:listings")
async def listings(
    request: AnyRequest,
    site: NamedDependency[Site],
    cursor: FromQuery[str | None] = None,
    done: FromQuery[str | None] = None,
) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/listings")
    async with site.db.reading() as session:
        await require_admin(request, session, site)
        page, next_cursor = await AdminService(site).pending_listings(
            session, status="pending_approval", limit=25, cursor=cursor
        )
        rows = [{"id": x.id, "title": x.title, "updated_at": x.updated_at} for x in page]
    return await _page(
        request,
        site,
        "admin/listings.html",
        {
            "rows": rows,
            "next_cursor": next_cursor,
            "approval_on": site.settings.moderation.require_listing_approval,
        },
        done=done,
    )


@post("/admin/listings/{listing_id:uuid}", include_in_schema=False, name="admin:listing-decide")
async def listing_decide(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/listings")
    form = await request.form()
    action, reason = form_text(form, "action"), form_text(form, "reason").strip()
    service = AdminService(site)
    async with site.db.transaction() as session:
        admin = await require_admin(request, session, site)
        if action == "approve":
            await service.approve(session, admin, listing_id)
        else:
            action = "reject"
            await service.reject(session, admin, listing_id, reason or "Not approved.")
    return redirect(f"/admin/listings?done={action}")


async def _settings_page(
    request: AnyRequest,
    site: Site,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
    done: str | None = None,
) -> Page:
    async with site.db.reading() as session:
        await require_admin(request, session, site)
    return await _page(
        request,
        site,
        "admin/settings.html",
        {"items": settings_out(site).items, "values": values or {}, "errors": errors or {}},
        status_code=status_code,
        done=done,
    )


@get("/admin/settings", include_in_schema=False, name="admin:settings")
async def settings_page(
    request: AnyRequest, site: NamedDependency[Site], done: FromQuery[str | None] = None
) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/settings")
    return await _settings_page(request, site, done=done)


@post("/admin/settings", include_in_schema=False, name="admin:settings-save")
async def save_settings(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/settings")
    form = await request.form()
    current = site_settings(site)
    changes: dict[str, Any] = {}
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in current.available():
        if isinstance(current.default(spec), bool):
            changes[spec.key] = form_text(form, spec.key) == "on"
            continue
        text = values[spec.key] = form_text(form, spec.key).strip()
        try:
            number: float = float(text) if isinstance(current.default(spec), float) else int(text)
        except ValueError:
            errors[spec.key] = "Enter a number."
            continue
        changes[spec.key] = number
    if not errors:
        try:
            async with site.db.transaction() as session:
                admin = await require_admin(request, session, site)
                changed = await current.update(session, admin.id, changes)
        except HTTPException as exc:
            if not refused(exc) or exc.status_code == 403:
                raise
            errors = plain_errors(errors_of(exc, default_field="form"))
        else:
            if changed:
                await current.changed()
            return redirect("/admin/settings?done=saved")
    return await _settings_page(request, site, values=values, errors=errors, status_code=400)


@get("/admin/audit", include_in_schema=False, name="admin:audit")
async def audit(
    request: AnyRequest,
    site: NamedDependency[Site],
    action: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
) -> Page:
    if principal_of(request) is None:
        return to_login("/admin/audit")
    async with site.db.reading() as session:
        await require_admin(request, session, site)
        page, next_cursor = await audit_page(session, action=action or None, limit=50, cursor=cursor)
        rows = [audit_out(e) for e in page]
    return await _page(
        request, site, "admin/audit.html", {"rows": rows, "action": action or "", "next_cursor": next_cursor}
    )


PAGE_ROUTES: list[Any] = [
    dashboard,
    users,
    user,
    user_action,
    reports,
    decide,
    listings,
    listing_decide,
    settings_page,
    save_settings,
    audit,
]
