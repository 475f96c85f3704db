"""Buying a service: an order for one package (plus add-ons) becomes a contract with one
milestone, in the same transaction."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import select, update

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.services import AccountService
from mercato.core.contracts.services import ContractService, MilestonePlan
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.listings import events, schemas
from mercato.core.listings.models import (
    UNLIMITED_REVISIONS,
    AddonKind,
    Listing,
    ListingAddon,
    ListingPackage,
    ListingStatus,
    ServiceOrder,
)
from mercato.core.listings.services import InvalidTransition

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site


class OrderService:
    """Service orders of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.accounts = AccountService(site)

    async def _orderable(self, session: AsyncSession, listing_id: uuid.UUID, buyer: User) -> Listing:
        """The listing, locked (PostgreSQL) against a concurrent pause or archive.

        A listing that was never published, or whose developer is no longer active, is a 404;
        one that was published and is now paused or archived is a 409 (someone may still have
        its page open)."""
        query = select(Listing).where(Listing.id == listing_id).with_for_update()
        listing = (await session.execute(query)).scalar_one_or_none()
        developer = await session.get(User, listing.developer_id) if listing is not None else None
        if (
            listing is None
            or developer is None
            or (listing.developer_id != buyer.id and listing.published_at is None)
            or developer.status != UserStatus.ACTIVE
        ):
            raise NotFoundException("No such service.")
        if listing.developer_id == buyer.id:
            raise PermissionDeniedException("You cannot buy your own service.")
        if listing.status != ListingStatus.PUBLISHED:
            raise InvalidTransition(f"This service is {listing.status}; it takes no orders.")
        return listing

    async def place(
        self, session: AsyncSession, buyer: User, listing_id: uuid.UUID, body: schemas.OrderIn
    ) -> ServiceOrder:
        """Buy ``body.package`` of a published listing, with add-ons and the answers to its
        requirement questions: records the order, makes a contract (``pending_funding``, one
        milestone of the package's price plus the add-ons', due after the delivery days) and
        emits ``service.ordered``.

        Any signed-in, active account may buy (with a verified e-mail when the site asks for
        one): the ``client`` role only gates *posting projects*, and a developer buying another
        developer's service (subcontracting a logo, an audit) is an ordinary purchase. Nobody
        may buy their own service."""
        listing = await self._orderable(session, listing_id, buyer)
        self.accounts.require_verified(buyer)
        package = (
            await session.execute(
                select(ListingPackage).where(
                    ListingPackage.listing_id == listing.id, ListingPackage.tier == body.package
                )
            )
        ).scalar_one_or_none()
        if package is None:
            raise field_error("package", f"This service has no {body.package} package.")
        if len(set(body.addons)) != len(body.addons):
            raise field_error("addons", "Pick each add-on once.")
        offered = {
            a.id: a
            for a in (
                await session.execute(select(ListingAddon).where(ListingAddon.listing_id == listing.id))
            ).scalars()
        }
        if any(addon_id not in offered for addon_id in body.addons):
            raise field_error("addons", "Pick add-ons this service offers.")
        chosen = sorted((offered[i] for i in body.addons), key=lambda a: a.position)
        answers = [a.strip() for a in body.requirements]
        questions = list(listing.requirements)
        if len(answers) != len(questions) or any(not a for a in answers):
            raise field_error(
                "requirements",
                f"Answer each of the developer's {len(questions)} questions."
                if questions
                else "This service asks no questions; send no answers.",
            )
        total = package.price + sum(a.price for a in chosen)
        delivery_days = max(
            1,
            package.delivery_days
            - sum(a.delivery_days_saved or 0 for a in chosen if a.kind == AddonKind.EXTRA_FAST),
        )
        revisions = package.revisions
        if revisions != UNLIMITED_REVISIONS:
            revisions += sum(a.extra_revisions or 0 for a in chosen if a.kind == AddonKind.EXTRA_REVISION)
        order_id = uuid.uuid4()
        extras = "".join(f"\n- {a.title}" for a in chosen)
        contract = await ContractService().create(
            session,
            client_id=buyer.id,
            developer_id=listing.developer_id,
            origin_type="service_order",
            origin_id=order_id,
            title=listing.title,
            currency=package.currency,
            milestones=[
                MilestonePlan(
                    title=package.name,
                    amount=total,
                    description=f"{package.tier.capitalize()} package of “{listing.title}”."
                    + (f"\nAdd-ons:{extras}" if chosen else ""),
                    due_days=delivery_days,
                )
            ],
        )
        order = ServiceOrder(
            id=order_id,
            listing_id=listing.id,
            package_id=package.id,
            package={
                "tier": package.tier,
                "name": package.name,
                "price": package.price,
                "delivery_days": package.delivery_days,
                "revisions": package.revisions,
                "features": list(package.features),
            },
            client_id=buyer.id,
            developer_id=listing.developer_id,
            addons=[
                {
                    "id": str(a.id),
                    "kind": a.kind,
                    "title": a.title,
                    "price": a.price,
                    "delivery_days_saved": a.delivery_days_saved,
                    "extra_revisions": a.extra_revisions,
                }
                for a in chosen
            ],
            requirements_answers=[
                {"question": q, "answer": a} for q, a in zip(questions, answers, strict=True)
            ],
            total=total,
            currency=package.currency,
            delivery_days=delivery_days,
            revisions=revisions,
            contract_id=contract.id,
        )
        session.add(order)
        await session.execute(
            update(Listing).where(Listing.id == listing.id).values(order_count=Listing.order_count + 1)
        )
        emit(
            session,
            Event.of(
                events.ServiceOrdered(
                    order_id=order.id,
                    listing_id=listing.id,
                    contract_id=contract.id,
                    client_id=buyer.id,
                    developer_id=listing.developer_id,
                    total=total,
                    currency=package.currency,
                ),
                actor_id=buyer.id,
            ),
        )
        return order
