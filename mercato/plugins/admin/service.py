"""What admins do to people, listings and settings; each action audited in its transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from litestar.exceptions import NotFoundException
from sqlalchemy import or_, select

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.services import AccountService, Conflict
from mercato.core.errors import field_error
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.listings.services import ListingService
from mercato.core.moderation.audit import record
from mercato.core.pagination import newest_first

from . import schemas

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

ROLES = ("client", "developer", "admin")


def admin_user(user: User) -> schemas.AdminUser:
    return schemas.AdminUser(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        roles=sorted(user.roles),
        status=user.status,
        email_verified=user.email_verified,
        suspended_reason=user.suspended_reason,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


class AdminService:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.accounts = AccountService(site)

    async def user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await session.get(User, user_id)
        if user is None or user.status == UserStatus.DELETED:
            raise NotFoundException("No such user.")
        return user

    async def users(
        self,
        session: AsyncSession,
        *,
        q: str | None,
        role: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[User], str | None]:
        """People, newest first; ``q`` matches the name or e-mail address."""
        query = select(User).where(User.status != UserStatus.DELETED)
        if q:
            like = f"%{q.strip().casefold()}%"
            query = query.where(or_(User.email_key.like(like), User.display_name.ilike(like)))
        if role == "client":
            query = query.where(User.is_client.is_(True))
        elif role == "developer":
            query = query.where(User.is_developer.is_(True))
        elif role == "admin":
            query = query.where(User.is_admin.is_(True))
        elif role:
            raise field_error("role", "Choose client, developer or admin.")
        if status:
            if status not in (UserStatus.ACTIVE, UserStatus.SUSPENDED):
                raise field_error("status", "Choose active or suspended.")
            query = query.where(User.status == status)
        return await newest_first(
            session, query, moment=User.created_at, row_id=User.id, cursor=cursor, limit=limit
        )

    async def verify(self, session: AsyncSession, admin: User, user: User) -> None:
        if user.email_verified:
            raise Conflict("This address is verified already.")
        self.accounts.mark_verified(session, user)
        record(session, admin.id, "user.verify", "user", user.id)

    async def set_roles(self, session: AsyncSession, admin: User, user: User, roles: Sequence[str]) -> None:
        wanted = set(roles)
        if user.id == admin.id and "admin" not in wanted:
            raise field_error("roles", "You cannot remove your own admin role.")
        before = sorted(user.roles)
        user.is_client = "client" in wanted
        user.is_developer = "developer" in wanted
        user.is_admin = "admin" in wanted
        record(
            session, admin.id, "user.roles", "user", user.id, data={"before": before, "after": sorted(wanted)}
        )

    async def pending_listings(
        self, session: AsyncSession, *, status: str, limit: int, cursor: str | None
    ) -> tuple[list[Listing], str | None]:
        query = select(Listing).where(Listing.status == status)
        return await newest_first(
            session, query, moment=Listing.updated_at, row_id=Listing.id, cursor=cursor, limit=limit
        )

    async def _listing(self, session: AsyncSession, listing_id: uuid.UUID) -> Listing:
        listing = (
            await session.execute(select(Listing).where(Listing.id == listing_id).with_for_update())
        ).scalar_one_or_none()
        if listing is None or listing.status == ListingStatus.ARCHIVED:
            raise NotFoundException("No such service.")
        return listing

    async def approve(self, session: AsyncSession, admin: User, listing_id: uuid.UUID) -> Listing:
        listing = await self._listing(session, listing_id)
        await ListingService(self.site).approve(session, listing, admin.id)
        record(session, admin.id, "listing.approve", "listing", listing.id)
        return listing

    async def reject(self, session: AsyncSession, admin: User, listing_id: uuid.UUID, reason: str) -> Listing:
        listing = await self._listing(session, listing_id)
        await ListingService(self.site).reject(session, listing, reason)
        record(session, admin.id, "listing.reject", "listing", listing.id, reason=reason)
        return listing
