"""The reviews API: parties review each other after a contract; anyone reads a person's
published reviews; the reviewed person replies once. Someone else's contract is a 404."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody
from sqlalchemy import select

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.routes import require_principal
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.site import Site

from .models import Review
from .service import MAX_COMMENT, MAX_REPLY, SUB_RATINGS, ContractReviews, ReviewService

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.ext.asyncio import AsyncSession


class ReviewIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    rating: int
    """Overall, 1 to 5 stars."""
    ratings: dict[str, int] = {}
    """Sub-ratings, each 1 to 5: ``quality``, ``communication``, ``timeliness`` when the client
    reviews the developer; ``clarity``, ``communication``, ``payment_promptness`` otherwise."""
    comment: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT)] = ""


class ReplyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REPLY)]
    """The reviewed person's public answer."""


class PersonOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    display_name: str


class ReplyOut(msgspec.Struct, kw_only=True):
    body: str
    created_at: datetime


class ReviewOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    contract_id: uuid.UUID
    author: PersonOut
    subject_id: uuid.UUID
    subject_role: str
    """``developer`` when the client reviewed the developer, ``client`` otherwise."""
    rating: int
    ratings: dict[str, int]
    comment: str
    published: bool
    """False while blind: only its author sees it."""
    published_at: datetime | None
    hidden: bool
    """Hidden by an administrator: only its author and subject see it."""
    reply: ReplyOut | None
    created_at: datetime


class ContractReviewsOut(msgspec.Struct, kw_only=True):
    state: str
    """``not_eligible`` (the contract has not ended with a payment), ``open`` (you may review),
    ``waiting`` (yours is in; the other's is not, or not yet shown), ``published``, or
    ``closed`` (the window passed without your review)."""
    can_review: bool
    closes_at: datetime | None
    """When the review window closes; blind reviews publish then."""
    ratings_asked: list[str]
    """The sub-ratings your review gives."""
    mine: ReviewOut | None
    theirs: ReviewOut | None
    """The other party's review: only once published."""


class ReviewPage(msgspec.Struct, kw_only=True):
    items: list[ReviewOut]
    next_cursor: str | None


async def names_of(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {u.id: u.display_name for u in await session.scalars(select(User).where(User.id.in_(wanted)))}


def review_out(review: Review, names: dict[uuid.UUID, str]) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        contract_id=review.contract_id,
        author=PersonOut(id=review.author_id, display_name=names.get(review.author_id, "Deleted user")),
        subject_id=review.subject_id,
        subject_role=review.subject_role,
        rating=review.rating,
        ratings={k: int(v) for k, v in review.ratings.items()},
        comment=review.comment,
        published=review.published_at is not None,
        published_at=review.published_at,
        hidden=review.hidden,
        reply=ReplyOut(body=review.reply, created_at=review.replied_at) if review.replied_at else None,
        created_at=review.created_at,
    )


async def contract_reviews_out(session: AsyncSession, found: ContractReviews) -> ContractReviewsOut:
    rows = [r for r in (found.mine, found.theirs) if r is not None]
    names = await names_of(session, [r.author_id for r in rows])
    return ContractReviewsOut(
        state=found.state,
        can_review=found.can_review,
        closes_at=found.closes_at,
        ratings_asked=list(SUB_RATINGS[found.subject_role]),
        mine=review_out(found.mine, names) if found.mine else None,
        theirs=review_out(found.theirs, names) if found.theirs else None,
    )


async def public_reviews(
    session: AsyncSession, site: Site, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> ReviewPage:
    """``user_id``'s published, visible reviews; 404 for someone who is not an active user."""
    status = await session.scalar(select(User.status).where(User.id == user_id))
    if status != UserStatus.ACTIVE:
        raise NotFoundException("No such user.")
    page, next_cursor = await ReviewService(site).public_page(session, user_id, limit=limit, cursor=cursor)
    names = await names_of(session, [r.author_id for r in page])
    return ReviewPage(items=[review_out(r, names) for r in page], next_cursor=next_cursor)


class ReviewsController(Controller):
    path = "/api/v1"
    tags = ["reviews"]

    @post("/contracts/{contract_id:uuid}/reviews", status_code=201, summary="Review the other party")
    async def write_review(
        self,
        request: Request[Any, Any, Any],
        contract_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewIn],
        site: NamedDependency[Site],
    ) -> ReviewOut:
        """Once per contract, after it completed (or was cancelled after a payment), within
        ``[plugins.reviews] review_window_days`` of its end. Blind: the other party sees it
        only when they have written theirs or the window closes. Reviews are never edited."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            review = await ReviewService(site).write(
                session,
                contract_id,
                principal.user_id,
                rating=data.rating,
                ratings=data.ratings,
                comment=data.comment,
            )
            return review_out(review, await names_of(session, [review.author_id]))

    @get("/contracts/{contract_id:uuid}/reviews", summary="A contract's reviews as its party sees them")
    async def contract_reviews(
        self, request: Request[Any, Any, Any], contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> ContractReviewsOut:
        principal = require_principal(request)
        async with site.db.reading() as session:
            found = await ReviewService(site).for_party(session, contract_id, principal.user_id)
            return await contract_reviews_out(session, found)

    @get("/users/{user_id:uuid}/reviews", summary="A person's published reviews, newest first")
    async def user_reviews(
        self,
        user_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> ReviewPage:
        async with site.db.reading() as session:
            return await public_reviews(session, site, user_id, limit=limit, cursor=cursor)

    @post("/reviews/{review_id:uuid}/reply", status_code=200, summary="Reply to a review of you (once)")
    async def reply(
        self,
        request: Request[Any, Any, Any],
        review_id: FromPath[uuid.UUID],
        data: JSONBody[ReplyIn],
        site: NamedDependency[Site],
    ) -> ReviewOut:
        """Only the person reviewed, once, and only when the review is published."""
        principal = require_principal(request)
        async with site.db.transaction() as session:
            review = await ReviewService(site).reply(session, review_id, principal.user_id, data.body)
            return review_out(review, await names_of(session, [review.author_id]))
