"""Reviews as reportable content: what an administrator sees of a reported review, and hiding it."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from litestar.exceptions import NotFoundException

from mercato.core.accounts.models import User
from mercato.core.moderation import ReportedItem, ReportSubject

from .models import Review
from .service import ReviewService

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

EXCERPT = 300


def review_subject(site: Site) -> ReportSubject:
    service = ReviewService(site)

    async def describe(
        session: AsyncSession, review_id: uuid.UUID, viewer_id: uuid.UUID | None
    ) -> ReportedItem | None:
        review = await session.get(Review, review_id)
        if review is None:
            return None
        if viewer_id is not None:
            if review.published_at is None:
                return None  # blind: nothing public to report yet
            try:
                await service.visible(session, review_id, viewer_id)
            except NotFoundException:
                return None
        subject = await session.get(User, review.subject_id)
        about = subject.display_name if subject is not None else "a deleted user"
        comment = " ".join(review.comment.split())
        return ReportedItem(
            owner_id=review.author_id,
            title=f"{review.rating}-star review of {about}",
            excerpt=comment[:EXCERPT] + ("…" if len(comment) > EXCERPT else ""),
            url=f"/users/{review.subject_id}/reviews#review-{review.id}",
            hidden=review.hidden,
        )

    async def hide(session: AsyncSession, review_id: uuid.UUID, hidden: bool) -> None:
        await service.hide(session, review_id, hidden)

    return ReportSubject(kind="review", label="a review", describe=describe, hide=hide)
