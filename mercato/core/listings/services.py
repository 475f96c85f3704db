"""Business rules of service listings: creating, editing (packages and add-ons replaced as
a set), the status machine, the gallery, content checks through ``validate_listing`` and
who may see what. The only place that changes listings; orders live in ``orders.py``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litestar.exceptions import NotFoundException, PermissionDeniedException
from sqlalchemy import exists, select

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.profiles import ProfileService
from mercato.core.accounts.services import AccountService
from mercato.core.catalog.services import expand_categories, resolve_category
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.listings import events, schemas
from mercato.core.listings.models import (
    LISTING_TRANSITIONS,
    TIER_ORDER,
    AddonKind,
    Listing,
    ListingAddon,
    ListingPackage,
    ListingStatus,
)
from mercato.core.markdown import render_markdown
from mercato.core.pagination import newest_first
from mercato.core.reputation.models import reputation_of
from mercato.core.reputation.schemas import ReputationOut
from mercato.core.states import InvalidTransition, check_transition

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

EDITABLE = frozenset({ListingStatus.DRAFT, ListingStatus.PUBLISHED, ListingStatus.PAUSED})
LIVE = frozenset({ListingStatus.PUBLISHED, ListingStatus.PAUSED})
"""Listings that were published and not archived: they must keep 1-3 valid packages."""


def _squash(text: str) -> str:
    return " ".join(text.split())


class ListingService:
    """Service listings of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.accounts = AccountService(site)
        self.profiles = ProfileService(site)

    # -- who may see and do what -------------------------------------------------
    async def can_view(self, session: AsyncSession, listing: Listing, user_id: uuid.UUID | None) -> bool:
        """The owner sees every status; anyone else only published listings of active developers
        that moderators have not hidden."""
        if user_id is not None and listing.developer_id == user_id:
            return True
        if listing.status != ListingStatus.PUBLISHED or listing.hidden_at is not None:
            return False
        developer = await session.get(User, listing.developer_id)
        return developer is not None and developer.status == UserStatus.ACTIVE

    async def visible(
        self, session: AsyncSession, listing_id: uuid.UUID, user_id: uuid.UUID | None
    ) -> Listing:
        """The listing if ``user_id`` may see it; 404 otherwise (never reveal it exists)."""
        listing = await session.get(Listing, listing_id)
        if listing is None or not await self.can_view(session, listing, user_id):
            raise NotFoundException("No such service.")
        return listing

    async def owned(
        self, session: AsyncSession, listing_id: uuid.UUID, user_id: uuid.UUID, *, lock: bool = False
    ) -> Listing:
        """The listing if ``user_id`` owns it: 403 when they can see it but it is someone
        else's, 404 when they cannot see it. ``lock``: FOR UPDATE on PostgreSQL."""
        query = select(Listing).where(Listing.id == listing_id)
        if lock:
            query = query.with_for_update()
        listing = (await session.execute(query)).scalar_one_or_none()
        if listing is None or listing.developer_id != user_id:
            if listing is not None and await self.can_view(session, listing, user_id):
                raise PermissionDeniedException("Only the developer who offers this service can do that.")
            raise NotFoundException("No such service.")
        return listing

    # -- packages and add-ons ---------------------------------------------------------
    async def packages_of(
        self, session: AsyncSession, listing_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ListingPackage]]:
        """Each listing's packages, basic first."""
        found: dict[uuid.UUID, list[ListingPackage]] = {i: [] for i in listing_ids}
        if listing_ids:
            query = select(ListingPackage).where(ListingPackage.listing_id.in_(list(listing_ids)))
            for package in (await session.execute(query)).scalars():
                found[package.listing_id].append(package)
        for packages in found.values():
            packages.sort(key=lambda p: TIER_ORDER.get(p.tier, 9))  # type: ignore[call-overload]
        return found

    async def addons_of(
        self, session: AsyncSession, listing_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ListingAddon]]:
        """Each listing's add-ons, in the author's order."""
        found: dict[uuid.UUID, list[ListingAddon]] = {i: [] for i in listing_ids}
        if listing_ids:
            query = (
                select(ListingAddon)
                .where(ListingAddon.listing_id.in_(list(listing_ids)))
                .order_by(ListingAddon.position)
            )
            for addon in (await session.execute(query)).scalars():
                found[addon.listing_id].append(addon)
        return found

    def _check_packages(self, packages: list[schemas.PackageIn]) -> None:
        tiers = [p.tier for p in packages]
        if len(set(tiers)) != len(tiers):
            raise field_error("packages", "Offer each tier (basic, standard, premium) at most once.")
        if len({p.currency for p in packages}) > 1:
            raise field_error("packages", "Price every package in the same currency.")
        for package in packages:
            if not _squash(package.name):
                raise field_error("packages", "Give every package a name.")
            if any(not f.strip() for f in package.features):
                raise field_error("packages", "A package's features cannot be empty.")

    def _check_addons(self, addons: list[schemas.AddonIn], packages: list[schemas.PackageIn]) -> None:
        kinds: list[str] = [a.kind for a in addons]
        for kind in (AddonKind.EXTRA_FAST, AddonKind.EXTRA_REVISION):
            if kinds.count(kind) > 1:
                raise field_error("addons", f"Offer at most one {kind.replace('_', ' ')} add-on.")
        ids = [a.id for a in addons if a.id is not None]
        if len(set(ids)) != len(ids):
            raise field_error("addons", "Each add-on may appear once.")
        slowest = max((p.delivery_days for p in packages), default=None)
        for addon in addons:
            if not _squash(addon.title):
                raise field_error("addons", "Give every add-on a title.")
            if addon.kind == AddonKind.EXTRA_FAST:
                if addon.delivery_days_saved is None or addon.extra_revisions is not None:
                    raise field_error(
                        "addons", "An extra-fast add-on says how many days it saves, and only that."
                    )
                if slowest is not None and addon.delivery_days_saved >= slowest:
                    raise field_error(
                        "addons", "An extra-fast add-on must save fewer days than your packages take."
                    )
            elif addon.kind == AddonKind.EXTRA_REVISION:
                if addon.extra_revisions is None or addon.delivery_days_saved is not None:
                    raise field_error(
                        "addons", "An extra-revision add-on says how many revisions it adds, and only that."
                    )
            elif addon.delivery_days_saved is not None or addon.extra_revisions is not None:
                raise field_error("addons", "A custom add-on neither saves days nor adds revisions.")

    async def _replace_packages(
        self, session: AsyncSession, listing: Listing, packages: list[schemas.PackageIn]
    ) -> None:
        """The set of packages becomes ``packages``; a tier that stays keeps its row and id.
        Orders keep a snapshot of what they bought, so removed tiers can go."""
        existing = {p.tier: p for p in (await self.packages_of(session, [listing.id]))[listing.id]}
        for body in packages:
            row = existing.pop(body.tier, None)
            if row is None:
                row = ListingPackage(listing_id=listing.id, tier=body.tier)
                session.add(row)
            row.name, row.description = _squash(body.name), body.description.strip()
            row.price, row.currency, row.delivery_days = body.price, body.currency, body.delivery_days
            row.revisions, row.features = body.revisions, [f.strip() for f in body.features]
        for row in existing.values():
            await session.delete(row)

    async def _replace_addons(
        self, session: AsyncSession, listing: Listing, addons: list[schemas.AddonIn]
    ) -> None:
        existing = {a.id: a for a in (await self.addons_of(session, [listing.id]))[listing.id]}
        for position, body in enumerate(addons):
            if body.id is not None:
                row = existing.pop(body.id, None)
                if row is None:
                    raise field_error(
                        "addons", "An add-on id does not belong to this service; omit it for new ones."
                    )
            else:
                row = ListingAddon(listing_id=listing.id)
                session.add(row)
            row.position, row.kind, row.title, row.price = (
                position,
                body.kind,
                _squash(body.title),
                body.price,
            )
            row.delivery_days_saved, row.extra_revisions = body.delivery_days_saved, body.extra_revisions
        for row in existing.values():
            await session.delete(row)

    # -- content ------------------------------------------------------------------------
    async def _clean(
        self,
        session: AsyncSession,
        *,
        category: str,
        skills: list[str],
        faq: list[schemas.FaqIn],
        requirements: list[str],
    ) -> dict[str, Any]:
        await resolve_category(session, category)
        resolved = await self.profiles.resolve_skills(session, skills, field="skills")
        cleaned_faq = [{"question": _squash(f.question), "answer": f.answer.strip()} for f in faq]
        if any(not f["question"] or not f["answer"] for f in cleaned_faq):
            raise field_error("faq", "Every question needs an answer, and neither can be empty.")
        questions = [_squash(q) for q in requirements]
        if any(not q for q in questions):
            raise field_error("requirements", "Questions cannot be empty.")
        return {
            "category_slug": category,
            "skills": [s.slug for s in resolved],
            "faq": cleaned_faq,
            "requirements": questions,
        }

    async def content_of(self, session: AsyncSession, listing: Listing) -> dict[str, Any]:
        """What ``validate_listing`` implementations see: the listing's texts as plain data."""
        await session.flush()
        packages = (await self.packages_of(session, [listing.id]))[listing.id]
        addons = (await self.addons_of(session, [listing.id]))[listing.id]
        return {
            "developer_id": str(listing.developer_id),
            "title": listing.title,
            "description": listing.description,
            "faq": [dict(f) for f in listing.faq],
            "packages": [
                {"tier": p.tier, "name": p.name, "description": p.description, "features": list(p.features)}
                for p in packages
            ],
            "addons": [{"kind": a.kind, "title": a.title} for a in addons],
            "requirements": list(listing.requirements),
        }

    async def check_content(self, session: AsyncSession, listing: Listing) -> None:
        """400 on ``content`` with every reason plugins give for rejecting the listing."""
        reasons = self.site.plugins.validate_listing(self.site, await self.content_of(session, listing))
        if reasons:
            raise field_error("content", " ".join(r.strip() for r in reasons))

    async def _check_publishable(self, session: AsyncSession, listing: Listing) -> None:
        count = len((await self.packages_of(session, [listing.id]))[listing.id])
        if not 1 <= count <= schemas.MAX_PACKAGES:
            raise field_error("packages", "A published service offers one to three packages.")

    # -- creating and editing ---------------------------------------------------------
    async def create(self, session: AsyncSession, developer: User, body: schemas.ServiceIn) -> Listing:
        """A draft listing (published at once when ``body.publish``)."""
        if not developer.is_developer:
            raise PermissionDeniedException(
                "Offering services needs the developer role: turn it on in your profile."
            )
        values = await self._clean(
            session, category=body.category, skills=body.skills, faq=body.faq, requirements=body.requirements
        )
        self._check_packages(body.packages)
        self._check_addons(body.addons, body.packages)
        listing = Listing(
            developer_id=developer.id,
            title=_squash(body.title),
            description=body.description.strip(),
            gallery=[],
            **values,
        )
        session.add(listing)
        await session.flush()
        await self._replace_packages(session, listing, body.packages)
        await self._replace_addons(session, listing, body.addons)
        await self.check_content(session, listing)
        if body.publish:
            await self.publish(session, developer, listing, content_checked=True)
        return listing

    async def update(self, session: AsyncSession, listing: Listing, body: schemas.ServiceUpdate) -> list[str]:
        """Apply ``body``; returns the keys of gallery images it removed (delete the files
        after commit). Archived listings cannot change (409)."""
        if listing.status not in EDITABLE:
            raise InvalidTransition(f"This service is {listing.status}; it can no longer be edited.")
        values = await self._clean(
            session,
            category=body.category or listing.category_slug,
            skills=body.skills if body.skills is not None else list(listing.skills),
            faq=(
                body.faq
                if body.faq is not None
                else [schemas.FaqIn(question=f["question"], answer=f["answer"]) for f in listing.faq]
            ),
            requirements=body.requirements if body.requirements is not None else list(listing.requirements),
        )
        current = (await self.packages_of(session, [listing.id]))[listing.id]
        packages = body.packages if body.packages is not None else [_package_in(p) for p in current]
        self._check_packages(packages)
        if body.addons is not None:
            self._check_addons(body.addons, packages)
        else:
            addons = (await self.addons_of(session, [listing.id]))[listing.id]
            self._check_addons([_addon_in(a) for a in addons], packages)
        if listing.status in LIVE and not packages:
            raise field_error("packages", "A published service offers one to three packages.")
        dropped: list[str] = []
        if body.gallery is not None:
            by_key = {image["key"]: image for image in listing.gallery}
            if len(set(body.gallery)) != len(body.gallery) or any(k not in by_key for k in body.gallery):
                raise field_error("gallery", "List keys of images already in this gallery, each once.")
            dropped = [k for k in by_key if k not in body.gallery]
            listing.gallery = [by_key[k] for k in body.gallery]
        for key, value in values.items():
            setattr(listing, key, value)
        if body.title is not None:
            listing.title = _squash(body.title)
        if body.description is not None:
            listing.description = body.description.strip()
        if body.packages is not None:
            await self._replace_packages(session, listing, body.packages)
        if body.addons is not None:
            await self._replace_addons(session, listing, body.addons)
        listing.updated_at = utcnow()
        await self.check_content(session, listing)
        emit(
            session,
            Event.of(
                events.ServiceUpdated(listing_id=listing.id, developer_id=listing.developer_id),
                actor_id=listing.developer_id,
            ),
        )
        return dropped

    def add_gallery_image(self, listing: Listing, *, key: str, width: int, height: int) -> None:
        """Append a stored image (at most :data:`~schemas.MAX_GALLERY`)."""
        self.check_gallery_room(listing)
        listing.gallery = [*listing.gallery, {"key": key, "width": width, "height": height}]
        listing.updated_at = utcnow()

    def check_gallery_room(self, listing: Listing) -> None:
        """409 for archived listings, 400 when the gallery is full."""
        if listing.status not in EDITABLE:
            raise InvalidTransition(f"This service is {listing.status}; it can no longer be edited.")
        if len(listing.gallery) >= schemas.MAX_GALLERY:
            raise field_error(
                "image", f"A service shows at most {schemas.MAX_GALLERY} images; remove one first."
            )

    def gallery_changed(self, session: AsyncSession, listing: Listing) -> None:
        emit(
            session,
            Event.of(
                events.ServiceUpdated(listing_id=listing.id, developer_id=listing.developer_id),
                actor_id=listing.developer_id,
            ),
        )

    # -- the status machine --------------------------------------------------------------
    async def publish(
        self, session: AsyncSession, developer: User, listing: Listing, *, content_checked: bool = False
    ) -> None:
        """draft → published: needs a verified e-mail (when the site asks for it), one to
        three packages and content no plugin rejects."""
        if listing.status == ListingStatus.PAUSED:
            raise InvalidTransition("This service is paused; resume it instead.")
        if listing.status == ListingStatus.PENDING_APPROVAL:
            raise InvalidTransition("This service is waiting for an administrator's approval.")
        check_transition(listing.status, ListingStatus.PUBLISHED, LISTING_TRANSITIONS, "service")
        self.accounts.require_verified(developer)
        await self._check_publishable(session, listing)
        if not content_checked:
            await self.check_content(session, listing)
        listing.rejection_reason = None
        if self.site.settings.moderation.require_listing_approval:
            listing.status = ListingStatus.PENDING_APPROVAL  # an admin publishes it (``approve``)
            return
        await self._publish_now(session, listing, actor_id=developer.id)

    async def _publish_now(self, session: AsyncSession, listing: Listing, *, actor_id: uuid.UUID) -> None:
        listing.status = ListingStatus.PUBLISHED
        listing.published_at = utcnow()
        emit(
            session,
            Event.of(
                events.ServicePublished(listing_id=listing.id, developer_id=listing.developer_id),
                actor_id=actor_id,
            ),
        )

    async def approve(self, session: AsyncSession, listing: Listing, admin_id: uuid.UUID) -> None:
        """pending_approval → published (an admin's decision)."""
        if listing.status != ListingStatus.PENDING_APPROVAL:
            raise InvalidTransition(f"This service is {listing.status}: only pending ones can be approved.")
        await self._publish_now(session, listing, actor_id=admin_id)

    async def reject(self, session: AsyncSession, listing: Listing, reason: str) -> None:
        """pending_approval → draft, with the admin's reason for its developer."""
        if listing.status != ListingStatus.PENDING_APPROVAL:
            raise InvalidTransition(f"This service is {listing.status}: only pending ones can be rejected.")
        listing.status = ListingStatus.DRAFT
        listing.rejection_reason = reason

    async def set_hidden(self, session: AsyncSession, listing: Listing, hidden: bool) -> None:
        """Moderators hide it from everyone but its developer (or show it again); search
        follows through ``service.updated``."""
        listing.hidden_at = utcnow() if hidden else None
        emit(
            session,
            Event.of(events.ServiceUpdated(listing_id=listing.id, developer_id=listing.developer_id)),
        )

    async def pause(self, session: AsyncSession, listing: Listing) -> None:
        """published → paused: hidden from everyone but its developer; takes no orders."""
        check_transition(listing.status, ListingStatus.PAUSED, LISTING_TRANSITIONS, "service")
        listing.status = ListingStatus.PAUSED
        emit(
            session,
            Event.of(
                events.ServicePaused(listing_id=listing.id, developer_id=listing.developer_id),
                actor_id=listing.developer_id,
            ),
        )

    async def resume(self, session: AsyncSession, listing: Listing) -> None:
        """paused → published; keeps its first ``published_at`` (no jumping the queue)."""
        if listing.status != ListingStatus.PAUSED:
            raise InvalidTransition(f"This service is {listing.status}; only paused services can be resumed.")
        await self._check_publishable(session, listing)
        listing.status = ListingStatus.PUBLISHED
        emit(
            session,
            Event.of(
                events.ServicePublished(
                    listing_id=listing.id, developer_id=listing.developer_id, resumed=True
                ),
                actor_id=listing.developer_id,
            ),
        )

    async def archive(self, session: AsyncSession, listing: Listing) -> None:
        """Any status but archived → archived, for good. Rows stay: orders point at them."""
        check_transition(listing.status, ListingStatus.ARCHIVED, LISTING_TRANSITIONS, "service")
        listing.status = ListingStatus.ARCHIVED
        listing.archived_at = utcnow()
        emit(
            session,
            Event.of(
                events.ServiceArchived(listing_id=listing.id, developer_id=listing.developer_id),
                actor_id=listing.developer_id,
            ),
        )

    # -- reading -------------------------------------------------------------------------
    async def out(
        self, session: AsyncSession, listing: Listing, viewer: uuid.UUID | None
    ) -> schemas.ServiceOut:
        return (await self.outs(session, [listing], viewer))[0]

    async def outs(
        self, session: AsyncSession, listings: list[Listing], viewer: uuid.UUID | None
    ) -> list[schemas.ServiceOut]:
        """API views of ``listings`` (a few queries for all of them)."""
        if not listings:
            return []
        await session.flush()
        ids = [listing.id for listing in listings]
        packages = await self.packages_of(session, ids)
        addons = await self.addons_of(session, ids)
        developer_ids = {listing.developer_id for listing in listings}
        names = dict(
            (
                await session.execute(select(User.id, User.display_name).where(User.id.in_(developer_ids)))
            ).all()
        )
        reputations = await reputation_of(session, developer_ids)
        storage = self.site.plugins.storage(self.site)
        items = []
        for listing in listings:
            own = packages[listing.id]
            currency = own[0].currency if own else None
            items.append(
                schemas.ServiceOut(
                    id=listing.id,
                    developer_id=listing.developer_id,
                    developer_name=names.get(listing.developer_id, "Deleted user"),
                    developer_reputation=ReputationOut.of(reputations.get(listing.developer_id)),
                    title=listing.title,
                    description=listing.description,
                    description_html=listing.description_html or str(render_markdown(listing.description)),
                    category=listing.category_slug,
                    skills=list(listing.skills),
                    packages=[
                        schemas.PackageOut(
                            id=p.id,
                            tier=p.tier,
                            name=p.name,
                            description=p.description,
                            price=p.price,
                            currency=p.currency,
                            delivery_days=p.delivery_days,
                            revisions=p.revisions,
                            features=list(p.features),
                        )
                        for p in own
                    ],
                    addons=[
                        schemas.AddonOut(
                            id=a.id,
                            kind=a.kind,
                            title=a.title,
                            price=a.price,
                            currency=currency,
                            delivery_days_saved=a.delivery_days_saved,
                            extra_revisions=a.extra_revisions,
                        )
                        for a in addons[listing.id]
                    ],
                    faq=[schemas.FaqOut(question=f["question"], answer=f["answer"]) for f in listing.faq],
                    requirements=list(listing.requirements),
                    gallery=[
                        schemas.GalleryImage(
                            key=i["key"], url=storage.url(i["key"]), width=i["width"], height=i["height"]
                        )
                        for i in listing.gallery
                    ],
                    status=listing.status,
                    currency=currency,
                    price_from=min((p.price for p in own), default=None),
                    fastest_delivery_days=min((p.delivery_days for p in own), default=None),
                    order_count=listing.order_count,
                    created_at=listing.created_at,
                    updated_at=listing.updated_at,
                    published_at=listing.published_at,
                    hidden=listing.hidden_at is not None,
                    rejection_reason=listing.rejection_reason if viewer == listing.developer_id else None,
                    is_owner=viewer == listing.developer_id,
                )
            )
        return items

    async def browse(
        self,
        session: AsyncSession,
        *,
        viewer: uuid.UUID | None,
        categories: list[str],
        skills: list[str],
        max_price: int | None,
        max_delivery_days: int | None,
        currency: str | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.ServicePage:
        """Published services of active developers, newest first (text search is
        ``/api/v1/search``). ``max_price``: the cheapest package costs at most this;
        ``max_delivery_days``: the fastest package delivers within this - the same meaning
        the search backend gives them."""
        query = (
            select(Listing)
            .join(User, User.id == Listing.developer_id)
            .where(Listing.status == ListingStatus.PUBLISHED, Listing.hidden_at.is_(None),
                   User.status == UserStatus.ACTIVE)
        )
        if categories:
            query = query.where(Listing.category_slug.in_(await expand_categories(session, categories)))
        package = ListingPackage.listing_id == Listing.id
        if max_price is not None:
            query = query.where(exists().where(package, ListingPackage.price <= max_price))
        if max_delivery_days is not None:
            query = query.where(exists().where(package, ListingPackage.delivery_days <= max_delivery_days))
        if currency:
            query = query.where(exists().where(package, ListingPackage.currency == currency))
        wanted = set(skills)
        # Skills live in a JSON list: filtered in Python (search does it indexed).
        page, next_cursor = await newest_first(
            session, query, moment=Listing.published_at, row_id=Listing.id, cursor=cursor, limit=limit,
            keep=lambda listing: wanted <= set(listing.skills),
        )
        return schemas.ServicePage(items=await self.outs(session, page, viewer), next_cursor=next_cursor)

    async def mine(
        self, session: AsyncSession, developer_id: uuid.UUID, *, status: str | None = None
    ) -> list[Listing]:
        """Every listing of ``developer_id`` (or those in ``status``), newest first."""
        query = select(Listing).where(Listing.developer_id == developer_id)
        if status:
            query = query.where(Listing.status == status)
        return list(
            (await session.execute(query.order_by(Listing.created_at.desc(), Listing.id.desc()))).scalars()
        )


def _package_in(package: ListingPackage) -> schemas.PackageIn:
    return schemas.PackageIn(
        tier=package.tier,  # type: ignore[arg-type]
        name=package.name,
        description=package.description,
        price=package.price,
        currency=package.currency,
        delivery_days=package.delivery_days,
        revisions=package.revisions,
        features=list(package.features),
    )


def _addon_in(addon: ListingAddon) -> schemas.AddonIn:
    return schemas.AddonIn(
        id=addon.id,
        kind=addon.kind,  # type: ignore[arg-type]
        title=addon.title,
        price=addon.price,
        delivery_days_saved=addon.delivery_days_saved,
        extra_revisions=addon.extra_revisions,
    )
