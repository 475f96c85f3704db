"""The dashboard's figures: KPIs and daily/weekly series, read from the tables (money from the
ledger, summed per currency)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import column, func, select, table

from mercato.core.accounts.models import User, UserStatus
from mercato.core.contracts.models import Contract, ContractStatus
from mercato.core.db import utcnow
from mercato.core.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, Purpose
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.moderation.models import Report, ReportStatus
from mercato.core.projects.models import Project, Proposal

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

DAYS = 30
WEEKS = 12


class Point(msgspec.Struct, kw_only=True):
    start: datetime
    """The day's or the week's first moment (UTC)."""
    value: int


class Series(msgspec.Struct, kw_only=True):
    name: str
    unit: str
    """``count`` or a currency code (values in minor units)."""
    points: list[Point]


class Stats(msgspec.Struct, kw_only=True):
    """The marketplace at a glance."""

    users: int
    signups_30d: int
    suspended_users: int
    active_contracts: int
    gross_volume: dict[str, int]
    """Money clients funded into escrow, all time, by currency (minor units)."""
    platform_revenue: dict[str, int]
    """Fees earned, all time, by currency (minor units)."""
    take_rate_percent: dict[str, float]
    """Revenue as a share of gross volume, by currency."""
    open_disputes: int
    open_reports: int
    pending_listings: int
    median_hours_to_first_proposal: float | None
    """Over projects published in the last 90 days that got a proposal."""
    daily: list[Series]
    """The last 30 days: signups, and money funded per currency."""
    weekly: list[Series]
    """The last 12 weeks: signups, and money funded per currency."""


def _day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _buckets(start: datetime, count: int, step: timedelta) -> list[datetime]:
    return [start + step * i for i in range(count)]


def _series(
    name: str, unit: str, starts: list[datetime], step: timedelta, rows: list[tuple[datetime, int]]
) -> Series:
    totals = [0] * len(starts)
    for moment, value in rows:
        index = int((moment - starts[0]) / step)
        if 0 <= index < len(starts):
            totals[index] += value
    return Series(
        name=name, unit=unit, points=[Point(start=s, value=v) for s, v in zip(starts, totals, strict=True)]
    )


async def _count(session: AsyncSession, query: Any) -> int:
    return int(await session.scalar(query) or 0)


async def open_disputes(session: AsyncSession) -> int:
    """Open disputes of the ``disputes`` plugin (read through its table's name: plugins do not
    import each other)."""
    disputes = table("disputes", column("status"))
    return await _count(
        session, select(func.count()).select_from(disputes).where(disputes.c.status == "open")
    )


async def build_stats(session: AsyncSession, *, with_disputes: bool) -> Stats:
    now = utcnow()
    today = _day(now)
    day_starts = _buckets(today - timedelta(days=DAYS - 1), DAYS, timedelta(days=1))
    week_start = today - timedelta(days=today.weekday())
    week_starts = _buckets(week_start - timedelta(weeks=WEEKS - 1), WEEKS, timedelta(weeks=1))
    since = min(day_starts[0], week_starts[0])

    signups = [
        (row[0], 1)
        for row in await session.execute(
            select(User.created_at).where(User.created_at >= since, User.status != UserStatus.DELETED)
        )
    ]
    funded_rows = (
        await session.execute(
            select(LedgerTransaction.created_at, LedgerEntry.currency, LedgerEntry.amount)
            .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(
                LedgerAccount.purpose == Purpose.ESCROW,
                LedgerEntry.amount > 0,
                LedgerTransaction.created_at >= since,
            )
        )
    ).all()
    by_currency: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for moment, currency, amount in funded_rows:
        by_currency[currency].append((moment, int(amount)))

    async def per_currency(purpose: str, positive_only: bool) -> dict[str, int]:
        query = (
            select(LedgerEntry.currency, func.sum(LedgerEntry.amount))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.purpose == purpose)
            .group_by(LedgerEntry.currency)
        )
        if positive_only:
            query = query.where(LedgerEntry.amount > 0)
        return {currency: int(total or 0) for currency, total in (await session.execute(query)).all()}

    gross = await per_currency(Purpose.ESCROW, True)
    revenue = await per_currency(Purpose.PLATFORM_REVENUE, False)
    take = {c: round(100 * revenue.get(c, 0) / v, 2) for c, v in gross.items() if v}

    published = (
        await session.execute(
            select(Project.published_at, func.min(Proposal.created_at))
            .join(Proposal, Proposal.project_id == Project.id)
            .where(Project.published_at >= now - timedelta(days=90))
            .group_by(Project.id, Project.published_at)
        )
    ).all()
    waits = [(first - start).total_seconds() / 3600 for start, first in published if start and first]

    daily = [_series("Signups", "count", day_starts, timedelta(days=1), signups)]
    weekly = [_series("Signups", "count", week_starts, timedelta(weeks=1), signups)]
    for currency in sorted(by_currency):
        rows = by_currency[currency]
        daily.append(_series(f"Funded ({currency})", currency, day_starts, timedelta(days=1), rows))
        weekly.append(_series(f"Funded ({currency})", currency, week_starts, timedelta(weeks=1), rows))

    return Stats(
        users=await _count(
            session, select(func.count()).select_from(User).where(User.status != UserStatus.DELETED)
        ),
        signups_30d=sum(1 for moment, _ in signups if moment >= day_starts[0]),
        suspended_users=await _count(
            session, select(func.count()).select_from(User).where(User.status == UserStatus.SUSPENDED)
        ),
        active_contracts=await _count(
            session,
            select(func.count())
            .select_from(Contract)
            .where(Contract.status.in_([ContractStatus.ACTIVE, ContractStatus.DISPUTED])),
        ),
        gross_volume=gross,
        platform_revenue=revenue,
        take_rate_percent=take,
        open_disputes=await open_disputes(session) if with_disputes else 0,
        open_reports=await _count(
            session, select(func.count()).select_from(Report).where(Report.status == ReportStatus.OPEN)
        ),
        pending_listings=await _count(
            session,
            select(func.count()).select_from(Listing).where(Listing.status == ListingStatus.PENDING_APPROVAL),
        ),
        median_hours_to_first_proposal=round(statistics.median(waits), 1) if waits else None,
        daily=daily,
        weekly=weekly,
    )
