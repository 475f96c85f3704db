"""Reports: people flag content; admins hide it, dismiss the report, or hide it and suspend
its owner. Every decision is audited."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from litestar.exceptions import NotFoundException
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mercato.core.accounts.models import User
from mercato.core.accounts.services import AccountService, Conflict
from mercato.core.accounts.sessions import limiter_of
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.moderation.audit import record
from mercato.core.moderation.models import Report, ReportReason, ReportStatus
from mercato.core.pagination import newest_first
from mercato.core.states import InvalidTransition

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.moderation.subjects import ReportedItem, ReportSubject
    from mercato.core.site import Site

REPORTS_PER_HOUR = 20
MAX_DETAILS = 2000

REASON_LABELS = {
    ReportReason.SPAM: "Spam",
    ReportReason.SCAM: "Scam or asking to pay off the platform",
    ReportReason.ABUSIVE: "Abusive or harassing",
    ReportReason.INAPPROPRIATE: "Inappropriate content",
    ReportReason.OTHER: "Something else",
}

DECISIONS = {
    "hide": ReportStatus.HIDDEN,
    "dismiss": ReportStatus.DISMISSED,
    "suspend": ReportStatus.SUSPENDED,
}
"""An admin's action → the status every open report of that content gets."""


class ReportService:
    """Reports of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def subjects(self) -> dict[str, ReportSubject]:
        return self.site.plugins.report_subjects(self.site)  # type: ignore[no-any-return]

    def subject(self, kind: str) -> ReportSubject:
        found = self.subjects().get(kind)
        if found is None:
            raise field_error("subject_type", f"Content of type `{kind}` cannot be reported here.")
        return found

    async def reportable(
        self, session: AsyncSession, reporter_id: uuid.UUID, kind: str, subject_id: uuid.UUID
    ) -> tuple[ReportSubject, ReportedItem]:
        """What ``reporter_id`` would report: 400 for an unknown kind or their own content,
        404 when they cannot see it."""
        subject = self.subject(kind)
        item = await subject.describe(session, subject_id, reporter_id)
        if item is None:
            raise NotFoundException(f"No such {kind}.")
        if item.owner_id == reporter_id:
            raise field_error("subject_id", "You cannot report your own content.")
        return subject, item

    async def check_rate(self, reporter_id: uuid.UUID) -> None:
        """At most ``REPORTS_PER_HOUR`` reports per person (call outside a transaction)."""
        await limiter_of(self.site).check(
            "report",
            str(reporter_id),
            limit=REPORTS_PER_HOUR,
            window_seconds=3600,
            message="You have sent many reports in a short time.",
        )

    async def create(
        self,
        session: AsyncSession,
        reporter_id: uuid.UUID,
        kind: str,
        subject_id: uuid.UUID,
        reason: str,
        details: str,
    ) -> Report:
        """File a report; 409 when the reporter already has an open one on the same content."""
        if reason not in REASON_LABELS:
            raise field_error("reason", "Choose a reason: " + ", ".join(REASON_LABELS) + ".")
        _, item = await self.reportable(session, reporter_id, kind, subject_id)
        if await self._open_report_of(session, reporter_id, kind, subject_id) is not None:
            raise Conflict("You have reported this already; an administrator will look at it.")
        report = Report(
            reporter_id=reporter_id,
            subject_type=kind,
            subject_id=subject_id,
            owner_id=item.owner_id,
            reason=reason,
            details=details.strip()[:MAX_DETAILS],
            status=ReportStatus.OPEN,
        )
        session.add(report)
        try:
            await session.flush()
        except IntegrityError:  # the same report sent twice at once
            raise Conflict("You have reported this already; an administrator will look at it.") from None
        return report

    async def _open_report_of(
        self, session: AsyncSession, reporter_id: uuid.UUID, kind: str, subject_id: uuid.UUID
    ) -> Report | None:
        return await session.scalar(
            select(Report).where(
                Report.reporter_id == reporter_id,
                Report.subject_type == kind,
                Report.subject_id == subject_id,
                Report.status == ReportStatus.OPEN,
            )
        )

    async def get(self, session: AsyncSession, report_id: uuid.UUID) -> Report:
        report = await session.get(Report, report_id)
        if report is None:
            raise NotFoundException("No such report.")
        return report

    async def decide(
        self,
        session: AsyncSession,
        admin_id: uuid.UUID,
        report_id: uuid.UUID,
        action: str,
        note: str,
    ) -> list[Report]:
        """An admin's decision on an open report, applied to every open report of the same
        content: ``hide`` it, ``dismiss`` the reports, or ``suspend`` (hide it and suspend its
        owner, signed out at once). Returns the reports decided."""
        if action == "restore":
            return await self._restore_from(session, admin_id, report_id, note)
        status = DECISIONS.get(action)
        if status is None:
            raise field_error("action", "Choose hide, dismiss, suspend or restore.")
        report = await self.get(session, report_id)
        if report.status != ReportStatus.OPEN:
            raise InvalidTransition(f"This report was decided already ({report.status}).")
        subject = self.subject(report.subject_type)
        item = await subject.describe(session, report.subject_id, None)
        if status in (ReportStatus.HIDDEN, ReportStatus.SUSPENDED) and item is not None:
            await subject.hide(session, report.subject_id, True)
        if status == ReportStatus.SUSPENDED:
            owner_id = item.owner_id if item is not None else report.owner_id
            owner = await session.get(User, owner_id) if owner_id is not None else None
            if owner is None or owner.id == admin_id or owner.is_admin:
                raise field_error("action", "Its owner cannot be suspended from here; hide it instead.")
            if owner.status != "suspended":
                await AccountService(self.site).suspend(
                    session, owner, reason=note or "Reported content", actor_id=admin_id
                )
                record(
                    session,
                    admin_id,
                    "user.suspend",
                    "user",
                    owner.id,
                    reason=note,
                    data={"report_id": str(report.id)},
                )
        decided = list(
            await session.scalars(
                select(Report)
                .where(
                    Report.subject_type == report.subject_type,
                    Report.subject_id == report.subject_id,
                    Report.status == ReportStatus.OPEN,
                )
                .with_for_update()
            )
        )
        now = utcnow()
        for each in decided:
            each.status = status
            each.decided_by = admin_id
            each.decided_at = now
            each.note = note
        record(
            session,
            admin_id,
            f"report.{action}",
            report.subject_type,
            report.subject_id,
            reason=note,
            data={"report_id": str(report.id), "reports": len(decided)},
        )
        return decided

    async def _restore_from(
        self, session: AsyncSession, admin_id: uuid.UUID, report_id: uuid.UUID, note: str
    ) -> list[Report]:
        """Show content hidden on a report again (a suspended owner stays suspended: reinstate
        them from their page). Its hidden reports become dismissed, with the note."""
        report = await self.get(session, report_id)
        if report.status not in (ReportStatus.HIDDEN, ReportStatus.SUSPENDED):
            raise InvalidTransition("Only content hidden on a report can be shown again.")
        subject = self.subject(report.subject_type)
        if await subject.describe(session, report.subject_id, None) is None:
            raise NotFoundException(f"No such {report.subject_type}.")
        await subject.hide(session, report.subject_id, False)
        decided = list(await session.scalars(
            select(Report).where(
                Report.subject_type == report.subject_type,
                Report.subject_id == report.subject_id,
                Report.status.in_([ReportStatus.HIDDEN, ReportStatus.SUSPENDED]),
            ).with_for_update()
        ))
        now = utcnow()
        for each in decided:
            each.status = ReportStatus.DISMISSED
            each.decided_by = admin_id
            each.decided_at = now
            each.note = note or "Shown again"
        record(session, admin_id, "content.restore", report.subject_type, report.subject_id, reason=note,
               data={"report_id": str(report.id), "reports": len(decided)})
        return decided

    async def page(
        self, session: AsyncSession, *, status: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Report], str | None]:
        query = select(Report)
        if status:
            query = query.where(Report.status == status)
        return await newest_first(
            session, query, moment=Report.created_at, row_id=Report.id, cursor=cursor, limit=limit
        )

    async def open_count(self, session: AsyncSession) -> int:
        return int(
            await session.scalar(
                select(func.count()).select_from(Report).where(Report.status == ReportStatus.OPEN)
            )
            or 0
        )
