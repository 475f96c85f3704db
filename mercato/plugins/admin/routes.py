"""The admin API, ``/api/v1/admin/*``: 401 signed out, 403 without the admin role."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from mercato.core.moderation.audit import audit_page
from mercato.core.moderation.models import AuditEntry, Report
from mercato.core.moderation.reports import ReportService
from mercato.core.moderation.site_settings import site_settings
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.projects.routes import problems
from mercato.core.site import Site

from . import schemas
from .access import require_admin
from .service import AdminService, admin_user
from .stats import Stats, build_stats

AnyRequest = Request[Any, Any, Any]
ADMIN_ONLY = problems(_401="Log in first", _403="Administrators only")


def audit_out(entry: AuditEntry) -> schemas.AuditOut:
    return schemas.AuditOut(
        id=entry.id,
        actor_id=entry.actor_id,
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        reason=entry.reason,
        data=entry.data,
        at=entry.at,
    )


async def reports_out(site: Site, session: Any, reports: list[Report]) -> list[schemas.AdminReport]:
    subjects = ReportService(site).subjects()
    items = []
    for report in reports:
        subject = subjects.get(report.subject_type)
        item = await subject.describe(session, report.subject_id, None) if subject else None
        items.append(
            schemas.AdminReport(
                id=report.id,
                reporter_id=report.reporter_id,
                subject_type=report.subject_type,
                subject_id=report.subject_id,
                owner_id=report.owner_id,
                reason=report.reason,
                details=report.details,
                status=report.status,
                note=report.note,
                created_at=report.created_at,
                decided_by=report.decided_by,
                decided_at=report.decided_at,
                title=item.title if item else None,
                excerpt=item.excerpt if item else None,
                url=item.url if item else None,
                hidden=bool(item and item.hidden),
            )
        )
    return items


def settings_out(site: Site) -> schemas.SettingsOut:
    current = site_settings(site)
    return schemas.SettingsOut(
        items=[
            schemas.SettingOut(
                key=spec.key,
                label=spec.label,
                hint=spec.hint,
                value=current.value(spec),
                default=current.default(spec),
                overridden=spec.key in current.overrides,
            )
            for spec in current.available()
        ]
    )


class AdminController(Controller):
    path = "/api/v1/admin"
    tags = ["admin"]

    @get("/stats", summary="KPIs and series over 30 days and 12 weeks", responses=ADMIN_ONLY)
    async def stats(self, request: AnyRequest, site: NamedDependency[Site]) -> Stats:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
            return await build_stats(session, with_disputes=site.plugins.pm.has_plugin("disputes"))

    @get("/users", summary="Search people", responses=ADMIN_ONLY)
    async def users(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        q: FromQuery[str | None] = None,
        role: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.AdminUserPage:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
            page, next_cursor = await AdminService(site).users(
                session, q=q, role=role, status=status, limit=limit, cursor=cursor
            )
            return schemas.AdminUserPage(items=[admin_user(u) for u in page], next_cursor=next_cursor)

    @get("/users/{user_id:uuid}", summary="One person, as admins see them", responses=ADMIN_ONLY)
    async def user(
        self, request: AnyRequest, user_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.AdminUser:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
            return admin_user(await AdminService(site).user(session, user_id))

    @post(
        "/users/{user_id:uuid}/verify",
        status_code=200,
        summary="Mark the e-mail address verified",
        responses=ADMIN_ONLY,
    )
    async def verify(
        self, request: AnyRequest, user_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.AdminUser:
        service = AdminService(site)
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            user = await service.user(session, user_id)
            await service.verify(session, admin, user)
            return admin_user(user)

    @put(
        "/users/{user_id:uuid}/roles",
        summary="Set roles (not removing your own admin role)",
        responses=ADMIN_ONLY,
    )
    async def roles(
        self,
        request: AnyRequest,
        user_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RolesIn],
        site: NamedDependency[Site],
    ) -> schemas.AdminUser:
        service = AdminService(site)
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            user = await service.user(session, user_id)
            await service.set_roles(session, admin, user, data.roles)
            return admin_user(user)

    @get("/reports", summary="The reports queue (open ones by default)", responses=ADMIN_ONLY)
    async def reports(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        status: FromQuery[str] = "open",
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.AdminReportPage:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
            page, next_cursor = await ReportService(site).page(
                session, status=status or None, limit=limit, cursor=cursor
            )
            return schemas.AdminReportPage(
                items=await reports_out(site, session, page), next_cursor=next_cursor
            )

    @post(
        "/reports/{report_id:uuid}/decide",
        status_code=200,
        summary="Hide the content, dismiss the report, hide it and suspend its owner, or show it again",
        responses={**ADMIN_ONLY, **problems(_404="No such report", _409="Decided already")},
    )
    async def decide(
        self,
        request: AnyRequest,
        report_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.DecideIn],
        site: NamedDependency[Site],
    ) -> schemas.AdminReport:
        service = ReportService(site)
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            await service.decide(session, admin.id, report_id, data.action, data.note)
        async with site.db.reading() as session:
            return (await reports_out(site, session, [await service.get(session, report_id)]))[0]

    @get(
        "/listings", summary="Service listings by status (pending approval by default)", responses=ADMIN_ONLY
    )
    async def listings(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        status: FromQuery[str] = "pending_approval",
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.PendingListingPage:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
            page, next_cursor = await AdminService(site).pending_listings(
                session, status=status, limit=limit, cursor=cursor
            )
            return schemas.PendingListingPage(
                items=[
                    schemas.PendingListing(
                        id=x.id,
                        developer_id=x.developer_id,
                        title=x.title,
                        status=x.status,
                        updated_at=x.updated_at,
                    )
                    for x in page
                ],
                next_cursor=next_cursor,
            )

    @post(
        "/listings/{listing_id:uuid}/approve",
        status_code=200,
        summary="Publish a pending listing",
        responses={**ADMIN_ONLY, **problems(_404="No such service", _409="Not pending")},
    )
    async def approve(
        self, request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.PendingListing:
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            x = await AdminService(site).approve(session, admin, listing_id)
            return schemas.PendingListing(
                id=x.id, developer_id=x.developer_id, title=x.title, status=x.status, updated_at=x.updated_at
            )

    @post(
        "/listings/{listing_id:uuid}/reject",
        status_code=200,
        summary="Send a pending listing back to draft",
        responses={**ADMIN_ONLY, **problems(_404="No such service", _409="Not pending")},
    )
    async def reject(
        self,
        request: AnyRequest,
        listing_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.RejectIn],
        site: NamedDependency[Site],
    ) -> schemas.PendingListing:
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            x = await AdminService(site).reject(session, admin, listing_id, data.reason)
            return schemas.PendingListing(
                id=x.id, developer_id=x.developer_id, title=x.title, status=x.status, updated_at=x.updated_at
            )

    @get("/settings", summary="Site settings admins may change", responses=ADMIN_ONLY)
    async def get_settings(self, request: AnyRequest, site: NamedDependency[Site]) -> schemas.SettingsOut:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
        return settings_out(site)

    @put(
        "/settings",
        summary="Change settings (null: back to the file's value); applied on every instance",
        responses={**ADMIN_ONLY, **problems(_400="A value out of bounds, or an unknown key")},
    )
    async def put_settings(
        self, request: AnyRequest, site: NamedDependency[Site], data: JSONBody[dict[str, Any]]
    ) -> schemas.SettingsOut:
        current = site_settings(site)
        async with site.db.transaction() as session:
            admin = await require_admin(request, session, site)
            changed = await current.update(session, admin.id, data)
        if changed:
            await current.changed()
        return settings_out(site)

    @get("/audit", summary="The audit log, newest first", responses=ADMIN_ONLY)
    async def audit(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        action: FromQuery[str | None] = None,
        actor_id: FromQuery[uuid.UUID | None] = None,
        subject_type: FromQuery[str | None] = None,
        subject_id: FromQuery[str | None] = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.AuditPage:
        async with site.db.reading() as session:
            await require_admin(request, session, site)
            page, next_cursor = await audit_page(
                session,
                action=action,
                actor_id=actor_id,
                subject_type=subject_type,
                subject_id=subject_id,
                limit=limit,
                cursor=cursor,
            )
            return schemas.AuditPage(items=[audit_out(e) for e in page], next_cursor=next_cursor)
