"""Reputation in the API: the figures people see on profiles, cards and proposals."""

from __future__ import annotations

import msgspec

from mercato.core.reputation.models import Reputation


class ReputationOut(msgspec.Struct, kw_only=True):
    """One person's figures in one role. Rates are whole percents, null until there is enough
    to say (three ended contracts, three milestones with a due date, three clients)."""

    rating_avg: float | None
    """1 to 5; null without published reviews."""
    rating_count: int
    sub_ratings: dict[str, float]
    """Averages of the sub-ratings (developers: quality, communication, timeliness; clients:
    clarity, communication, payment_promptness)."""
    job_success: int | None
    """Contracts completed without a dispute lost, of those ended."""
    contracts_ended: int
    on_time_rate: int | None
    """Milestones delivered by their due date (developers)."""
    repeat_rate: int | None
    """People on the other side who came back for another contract."""

    @classmethod
    def of(cls, row: Reputation | None) -> ReputationOut | None:
        if row is None:
            return None
        return cls(
            rating_avg=row.rating_avg, rating_count=row.rating_count, sub_ratings=dict(row.sub_ratings),
            job_success=row.job_success, contracts_ended=row.contracts_ended,
            on_time_rate=row.on_time_rate, repeat_rate=row.repeat_rate,
        )
