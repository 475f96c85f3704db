"""``POST /api/v1/reports``: anyone signed in reports content to the admins."""

from __future__ import annotations

from typing import Any

from litestar import Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from mercato.core.accounts.routes import current_user, require_principal
from mercato.core.moderation.models import Report
from mercato.core.moderation.reports import ReportService
from mercato.core.moderation.schemas import ReportIn, ReportOut
from mercato.core.projects.routes import problems
from mercato.core.site import Site


def report_out(report: Report) -> ReportOut:
    return ReportOut(
        id=report.id,
        subject_type=report.subject_type,
        subject_id=report.subject_id,
        reason=report.reason,
        details=report.details,
        status=report.status,
        created_at=report.created_at,
        decided_at=report.decided_at,
    )


@post(
    "/api/v1/reports",
    status_code=201,
    tags=["moderation"],
    summary="Report content to the administrators",
    responses=problems(
        _400="Unknown kind, bad reason, or your own content",
        _401="Log in first",
        _404="No such content (or you may not see it)",
        _409="You reported it already",
        _429="Too many reports",
    ),
)
async def create_report(
    request: Request[Any, Any, Any], data: JSONBody[ReportIn], site: NamedDependency[Site]
) -> ReportOut:
    principal = require_principal(request)
    service = ReportService(site)
    await service.check_rate(principal.user_id)
    async with site.db.transaction() as session:
        reporter = await current_user(request, session, site)
        report = await service.create(
            session, reporter.id, data.subject_type, data.subject_id, data.reason, data.details
        )
        return report_out(report)


API_ROUTES: list[Any] = [create_report]
