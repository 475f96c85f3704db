"""Reviews: once a contract has ended with money paid, each party may review the other once.

Reviews are blind: neither party sees the other's until both have written theirs (then both
publish in that transaction) or ``review_window_days`` after the contract ended (then a timer
publishes whatever was written). Nothing is edited after it is written. The reviewed person
may reply once, publicly, to a published review. Administrators hide and restore reviews
through moderation (``register_report_subjects``).

Writing a review locks the contract row, so two reviews arriving at once see each other and
publish together exactly once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, ClassVar

import msgspec
from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import func, select

from mercato.core.contracts.models import Contract, ContractStatus, Milestone
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, EventPayload, emit
from mercato.core.pagination import newest_first
from mercato.core.states import InvalidTransition
from mercato.core.timers import TimerHandler, cancel, schedule

from .models import Review

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site
    from mercato.core.timers.models import Timer

PLUGIN_ID = "reviews"
PUBLISH_DUE = "review.publish_due"
MAX_COMMENT = 5_000
MAX_REPLY = 2_000
SUB_RATINGS: dict[str, tuple[str, ...]] = {
    "developer": ("quality", "communication", "timeliness"),
    "client": ("clarity", "communication", "payment_promptness"),
}
"""The sub-ratings asked for, by the role of the person reviewed."""
SUB_RATING_LABELS = {
    "quality": "Quality of work",
    "communication": "Communication",
    "timeliness": "Timeliness",
    "clarity": "Clarity of requirements",
    "payment_promptness": "Payment promptness",
}


class ReviewSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``[plugins.reviews]``."""

    review_window_days: Annotated[int, msgspec.Meta(ge=1, le=90)] = 14
    """Days after a contract ends during which its parties may review each other; reviews
    still blind then are published."""


class ReviewPublished(EventPayload, frozen=True):
    """A review became public (both parties reviewed, or the window closed)."""

    event_type: ClassVar[str] = "review.published"
    review_id: uuid.UUID
    contract_id: uuid.UUID
    author_id: uuid.UUID
    subject_id: uuid.UUID
    subject_role: str
    """``developer`` when the client reviewed the developer, ``client`` otherwise."""
    rating: int
    ratings: dict[str, int]
    comment: str


class ReviewHidden(EventPayload, frozen=True):
    """An administrator hid a published review."""

    event_type: ClassVar[str] = "review.hidden"
    review_id: uuid.UUID
    contract_id: uuid.UUID
    subject_id: uuid.UUID


class ReviewRestored(EventPayload, frozen=True):
    """An administrator showed a hidden review again."""

    event_type: ClassVar[str] = "review.restored"
    review_id: uuid.UUID
    contract_id: uuid.UUID
    subject_id: uuid.UUID


@dataclass(frozen=True)
class ContractReviews:
    """What one party of a contract sees of its reviews."""

    contract: Contract
    viewer_id: uuid.UUID
    mine: Review | None
    theirs: Review | None
    """The other party's review, only once published."""
    eligible: bool
    """The contract ended in a way that may be reviewed (completed, or cancelled after a payment)."""
    closes_at: datetime | None
    """When the review window closes (None while the contract is not eligible)."""
    now: datetime

    @property
    def other_id(self) -> uuid.UUID:
        c = self.contract
        return c.developer_id if self.viewer_id == c.client_id else c.client_id

    @property
    def subject_role(self) -> str:
        return "developer" if self.viewer_id == self.contract.client_id else "client"

    @property
    def window_open(self) -> bool:
        return self.closes_at is not None and self.now < self.closes_at

    @property
    def can_review(self) -> bool:
        return self.eligible and self.window_open and self.mine is None

    @property
    def state(self) -> str:
        """``not_eligible``, ``open`` (you may write yours), ``waiting`` (yours is in, blind),
        ``published``, or ``closed`` (the window passed with no review from you)."""
        if not self.eligible:
            return "not_eligible"
        if self.mine is not None:
            return "published" if self.mine.published_at is not None else "waiting"
        return "open" if self.window_open else ("published" if self.theirs is not None else "closed")


class ReviewService:
    def __init__(self, site: Site) -> None:
        self.site = site

    @property
    def settings(self) -> ReviewSettings:
        found = self.site.plugin_settings(PLUGIN_ID)
        return found if isinstance(found, ReviewSettings) else ReviewSettings()

    # -- rules ---------------------------------------------------------------------------
    async def eligible(self, session: AsyncSession, contract: Contract) -> bool:
        """Completed, or cancelled after some money was released to the developer."""
        if contract.ended_at is None:
            return False
        if contract.status == ContractStatus.COMPLETED:
            return True
        if contract.status != ContractStatus.CANCELLED:
            return False
        released = await session.scalar(
            select(func.coalesce(func.sum(Milestone.released), 0)).where(Milestone.contract_id == contract.id)
        )
        return bool(released and released > 0)

    def closes_at(self, contract: Contract) -> datetime | None:
        if contract.ended_at is None:
            return None
        return contract.ended_at + timedelta(days=self.settings.review_window_days)

    @staticmethod
    def check_ratings(subject_role: str, rating: int, ratings: Mapping[str, int]) -> dict[str, int]:
        """The sub-ratings for ``subject_role``, each 1 to 5; a 400 naming the first wrong field."""
        if not 1 <= rating <= 5:
            raise field_error("rating", "Give an overall rating from 1 to 5 stars.")
        wanted = SUB_RATINGS[subject_role]
        for name in ratings:
            if name not in wanted:
                raise field_error(
                    f"ratings.{name}",
                    f"“{name}” is not rated for a {subject_role}; rate {', '.join(wanted)}.",
                )
        checked: dict[str, int] = {}
        for name in wanted:
            value = ratings.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
                raise field_error(f"ratings.{name}", f"Rate {SUB_RATING_LABELS[name].lower()} from 1 to 5.")
            checked[name] = value
        return checked

    # -- reading -------------------------------------------------------------------------
    async def party_contract(
        self, session: AsyncSession, contract_id: uuid.UUID, user_id: uuid.UUID
    ) -> Contract:
        contract = await session.get(Contract, contract_id)
        if contract is None or user_id not in (contract.client_id, contract.developer_id):
            raise NotFoundException("No such contract.")
        return contract

    async def for_party(
        self, session: AsyncSession, contract_id: uuid.UUID, user_id: uuid.UUID
    ) -> ContractReviews:
        """The viewer's own review always, the other's once published (404 for non-parties)."""
        contract = await self.party_contract(session, contract_id, user_id)
        rows = list(await session.scalars(select(Review).where(Review.contract_id == contract_id)))
        mine = next((r for r in rows if r.author_id == user_id), None)
        theirs = next((r for r in rows if r.author_id != user_id and r.published_at is not None), None)
        eligible = await self.eligible(session, contract)
        return ContractReviews(
            contract=contract,
            viewer_id=user_id,
            mine=mine,
            theirs=theirs,
            eligible=eligible,
            closes_at=self.closes_at(contract) if eligible else None,
            now=utcnow(),
        )

    async def visible(
        self, session: AsyncSession, review_id: uuid.UUID, viewer_id: uuid.UUID | None
    ) -> Review:
        """A published review anyone may see (hidden ones: only their author and subject),
        or a blind one its author sees; 404 otherwise."""
        review = await session.get(Review, review_id)
        if review is None:
            raise NotFoundException("No such review.")
        involved = viewer_id in (review.author_id, review.subject_id)
        if review.published_at is None and viewer_id != review.author_id:
            raise NotFoundException("No such review.")
        if review.hidden and not involved:
            raise NotFoundException("No such review.")
        return review

    async def public_page(
        self, session: AsyncSession, subject_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> tuple[list[Review], str | None]:
        """``subject_id``'s published, visible reviews, newest first."""
        query = select(Review).where(
            Review.subject_id == subject_id, Review.published_at.is_not(None), Review.hidden.is_(False)
        )
        return await newest_first(
            session, query, moment=Review.published_at, row_id=Review.id, cursor=cursor, limit=limit
        )

    async def summary(self, session: AsyncSession, subject_id: uuid.UUID) -> tuple[int, float | None]:
        """How many published, visible reviews ``subject_id`` has, and their average rating."""
        row = (
            await session.execute(
                select(func.count(Review.id), func.avg(Review.rating)).where(
                    Review.subject_id == subject_id,
                    Review.published_at.is_not(None),
                    Review.hidden.is_(False),
                )
            )
        ).one()
        return int(row[0]), (float(row[1]) if row[1] is not None else None)

    # -- changing ------------------------------------------------------------------------
    async def write(
        self,
        session: AsyncSession,
        contract_id: uuid.UUID,
        author_id: uuid.UUID,
        *,
        rating: int,
        ratings: Mapping[str, int],
        comment: str,
        now: datetime | None = None,
    ) -> Review:
        """``author_id`` reviews the contract's other party. 404 for non-parties; 409 when the
        contract may not be reviewed, the window has closed, or the author has reviewed it; 400
        for ratings out of range. When the other party's review is in, both publish now."""
        await self.party_contract(session, contract_id, author_id)  # before any lock
        contract = (
            await session.scalars(
                select(Contract)
                .where(Contract.id == contract_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        if not await self.eligible(session, contract):
            raise InvalidTransition(
                "This contract can be reviewed once it is completed (or cancelled after a payment)."
            )
        closes = self.closes_at(contract)
        assert closes is not None
        now = now or utcnow()
        if now >= closes:
            raise InvalidTransition(
                f"The review window for this contract closed on {closes:%d %B %Y}: reviews are written "
                f"within {self.settings.review_window_days} days of its end."
            )
        client = author_id == contract.client_id
        subject_id = contract.developer_id if client else contract.client_id
        subject_role = "developer" if client else "client"
        checked = self.check_ratings(subject_role, rating, ratings)
        rows = list(await session.scalars(select(Review).where(Review.contract_id == contract_id)))
        if any(r.author_id == author_id for r in rows):
            raise InvalidTransition("You have reviewed this contract already; reviews are not edited.")
        review = Review(
            contract_id=contract_id,
            author_id=author_id,
            subject_id=subject_id,
            subject_role=subject_role,
            rating=rating,
            ratings=checked,
            comment=comment.strip()[:MAX_COMMENT],
            hidden=False,
            reply="",
        )
        session.add(review)
        await session.flush()
        if rows:  # the other party's is in: both go public together
            await cancel(session, PUBLISH_DUE, str(contract_id))
            self._publish(session, [*rows, review], now)
        else:
            await schedule(session, PUBLISH_DUE, str(contract_id), closes)
        return review

    def _publish(self, session: AsyncSession, reviews: list[Review], now: datetime) -> None:
        for review in reviews:
            if review.published_at is not None:
                continue
            review.published_at = now
            emit(
                session,
                Event.of(
                    ReviewPublished(
                        review_id=review.id,
                        contract_id=review.contract_id,
                        author_id=review.author_id,
                        subject_id=review.subject_id,
                        subject_role=review.subject_role,
                        rating=review.rating,
                        ratings={k: int(v) for k, v in review.ratings.items()},
                        comment=review.comment,
                    ),
                    actor_id=review.author_id,
                ),
            )

    async def reply(
        self, session: AsyncSession, review_id: uuid.UUID, user_id: uuid.UUID, body: str
    ) -> Review:
        """The reviewed person answers a published review, once (409 otherwise; 403 for anyone
        else who may see it)."""
        await self.visible(session, review_id, user_id)
        review = (
            await session.scalars(
                select(Review)
                .where(Review.id == review_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one()
        if user_id != review.subject_id:
            raise PermissionDeniedException("Only the person reviewed can reply to a review.")
        if review.published_at is None:
            raise InvalidTransition("This review is not published yet.")
        if review.replied_at is not None:
            raise InvalidTransition("You have replied to this review already; a review has one reply.")
        text = body.strip()
        if not text:
            raise field_error("body", "Write your reply.")
        review.reply = text[:MAX_REPLY]
        review.replied_at = utcnow()
        return review

    async def hide(self, session: AsyncSession, review_id: uuid.UUID, hidden: bool) -> None:
        """An administrator hides a review from everyone but its author and subject, or shows it
        again; the change emits ``review.hidden`` / ``review.restored``."""
        review = (
            await session.scalars(
                select(Review)
                .where(Review.id == review_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        if review is None:
            raise NotFoundException("No such review.")
        if review.hidden == hidden:
            return
        review.hidden = hidden
        payload_type = ReviewHidden if hidden else ReviewRestored
        emit(
            session,
            Event.of(
                payload_type(
                    review_id=review.id, contract_id=review.contract_id, subject_id=review.subject_id
                )
            ),
        )

    async def _publish_due(self, session: AsyncSession, timer: Timer) -> None:
        contract_id = uuid.UUID(timer.ref)
        await session.scalars(  # the same lock a review being written takes
            select(Contract.id).where(Contract.id == contract_id).with_for_update()
        )
        blind = list(
            await session.scalars(
                select(Review).where(Review.contract_id == contract_id, Review.published_at.is_(None))
            )
        )
        self._publish(session, blind, utcnow())

    def timer_handlers(self) -> list[TimerHandler]:
        return [TimerHandler(PUBLISH_DUE, self._publish_due)]
