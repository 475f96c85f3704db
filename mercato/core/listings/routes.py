"""The services API. Thin: rules live in the services; someone else's draft, paused or
archived listing is a 404."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.routes import Upload, current_user, delete_files, require_principal
from mercato.core.images import store_image
from mercato.core.listings import schemas
from mercato.core.listings.models import ListingStatus
from mercato.core.listings.orders import OrderService
from mercato.core.listings.services import ListingService
from mercato.core.pagination import DEFAULT_LIMIT, Cursor, Limit
from mercato.core.site import Site

AnyRequest = Request[Any, Any, Any]
Slugs = Annotated[list[str] | None, QueryParameter(max_items=20)]
MaxPrice = Annotated[
    int | None, QueryParameter(ge=1, description="The cheapest package costs at most this (minor units).")
]
MaxDays = Annotated[
    int | None,
    QueryParameter(ge=1, le=365, description="The fastest package delivers within this many days."),
]
CurrencyFilter = Annotated[
    str | None, QueryParameter(pattern=r"^[A-Z]{3}$", description="Only services priced in this currency.")
]


class ServicesController(Controller):
    path = "/api/v1/services"
    tags = ["services"]

    @get("/", summary="Published services, newest first")
    async def list_services(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        category: Slugs = None,
        skill: Slugs = None,
        max_price: MaxPrice = None,
        max_delivery_days: MaxDays = None,
        currency: CurrencyFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> schemas.ServicePage:
        principal = principal_of(request)
        async with site.db.reading() as session:
            return await ListingService(site).browse(
                session,
                viewer=principal.user_id if principal else None,
                categories=category or [],
                skills=skill or [],
                max_price=max_price,
                max_delivery_days=max_delivery_days,
                currency=currency,
                limit=limit,
                cursor=cursor,
            )

    @post("/", summary="Offer a service (a draft unless `publish` is true; developers only)")
    async def create_service(
        self, request: AnyRequest, data: JSONBody[schemas.ServiceIn], site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        service = ListingService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await service.create(session, developer, data)
            return await service.out(session, listing, developer.id)

    @get("/mine", summary="Services you offer, in every status, newest first")
    async def my_services(
        self,
        request: AnyRequest,
        site: NamedDependency[Site],
        status: FromQuery[schemas.Status | None] = None,
    ) -> list[schemas.ServiceOut]:
        principal = require_principal(request)
        service = ListingService(site)
        async with site.db.reading() as session:
            listings = await service.mine(session, principal.user_id, status=status)
            return await service.outs(session, listings, principal.user_id)

    @get("/{service_id:uuid}", summary="A service (drafts, paused and archived ones: their developer only)")
    async def get_service(
        self, request: AnyRequest, service_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        principal = principal_of(request)
        viewer = principal.user_id if principal else None
        service = ListingService(site)
        async with site.db.reading() as session:
            return await service.out(session, await service.visible(session, service_id, viewer), viewer)

    @patch("/{service_id:uuid}", summary="Edit your service (`packages` and `addons` replace the whole set)")
    async def update_service(
        self,
        request: AnyRequest,
        service_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.ServiceUpdate],
        site: NamedDependency[Site],
    ) -> schemas.ServiceOut:
        service = ListingService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await service.owned(session, service_id, developer.id, lock=True)
            dropped = await service.update(session, listing, data)
            out = await service.out(session, listing, developer.id)
        await delete_files(site, dropped)
        return out

    @delete("/{service_id:uuid}", status_code=200, summary="Archive your service (for good; orders keep it)")
    async def archive_service(
        self, request: AnyRequest, service_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        service = ListingService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await service.owned(session, service_id, developer.id, lock=True)
            await service.archive(session, listing)
            return await service.out(session, listing, developer.id)

    @post("/{service_id:uuid}/publish", status_code=200, summary="Publish a draft")
    async def publish_service(
        self, request: AnyRequest, service_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        return await self._transition(request, service_id, site, ListingStatus.PUBLISHED)

    @post(
        "/{service_id:uuid}/pause", status_code=200, summary="Pause a published service (hide it, no orders)"
    )
    async def pause_service(
        self, request: AnyRequest, service_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        return await self._transition(request, service_id, site, ListingStatus.PAUSED)

    @post("/{service_id:uuid}/resume", status_code=200, summary="Publish a paused service again")
    async def resume_service(
        self, request: AnyRequest, service_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        return await self._transition(request, service_id, site, "resume")

    async def _transition(
        self, request: AnyRequest, service_id: uuid.UUID, site: Site, action: str
    ) -> schemas.ServiceOut:
        service = ListingService(site)
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await service.owned(session, service_id, developer.id, lock=True)
            if action == ListingStatus.PUBLISHED:
                await service.publish(session, developer, listing)
            elif action == ListingStatus.PAUSED:
                await service.pause(session, listing)
            else:
                await service.resume(session, listing)
            return await service.out(session, listing, developer.id)

    @post(
        "/{service_id:uuid}/gallery",
        summary=f"Add an image to your gallery (JPEG, PNG, GIF or WebP; at most {schemas.MAX_GALLERY})",
    )
    async def add_gallery_image(
        self, request: AnyRequest, service_id: FromPath[uuid.UUID], data: Upload, site: NamedDependency[Site]
    ) -> schemas.ServiceOut:
        service = ListingService(site)
        async with site.db.reading() as session:  # fail fast, before the image work
            listing = await service.owned(
                session, service_id, (await current_user(request, session, site)).id
            )
            service.check_gallery_room(listing)
        stored = await store_image(
            site.plugins.storage(site), await data.read(), folder="services", settings=site.settings.uploads
        )
        try:
            async with site.db.transaction() as session:
                developer = await current_user(request, session, site)
                listing = await service.owned(session, service_id, developer.id, lock=True)
                service.add_gallery_image(listing, key=stored.key, width=stored.width, height=stored.height)
                service.gallery_changed(session, listing)
                return await service.out(session, listing, developer.id)
        except Exception:
            await delete_files(site, [stored.key])
            raise

    @post(
        "/{service_id:uuid}/orders",
        summary="Buy a package of a published service: creates the order and its contract",
    )
    async def order_service(
        self,
        request: AnyRequest,
        service_id: FromPath[uuid.UUID],
        data: JSONBody[schemas.OrderIn],
        site: NamedDependency[Site],
    ) -> schemas.OrderOut:
        async with site.db.transaction() as session:
            buyer = await current_user(request, session, site)
            order = await OrderService(site).place(session, buyer, service_id, data)
            return schemas.OrderOut(order_id=order.id, contract_id=order.contract_id)


API_CONTROLLERS = [ServicesController]
