"""The theme's service pages: browsing published services, a service's page (packages side by
side, add-ons, FAQ, the developer and the order form; its developer's actions instead), offering
a new service or editing one (and adding or removing its gallery images), and ordering one (which
opens a contract).

Money is typed in major units (``150``, ``62.50``) and stored in minor units. Forms that fail
re-render with the input kept and the message next to the field (status 400; 403 or 409 when
the service refuses). Someone else's draft or paused service is a 404, never a hint.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import (
    HTTPException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template
from markupsafe import Markup

from mercato.core.accounts.forms import (
    CURRENCIES,
    AnyRequest,
    Page,
    errors_of,
    form_file,
    form_text,
    format_amount,
    parse_rate,
    redirect,
    schema_errors,
    skill_names,
    split_list,
    to_login,
)
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.models import User
from mercato.core.accounts.profiles import ProfileService
from mercato.core.accounts.routes import current_user, delete_files, require_principal
from mercato.core.catalog.display import (
    Names,
    excerpt,
    format_money,
    load_names,
    needs_verification,
    plain_errors,
    refused,
)
from mercato.core.images import store_image
from mercato.core.listings import schemas
from mercato.core.listings.models import Listing, ListingStatus
from mercato.core.listings.orders import OrderService
from mercato.core.listings.services import ListingService
from mercato.core.site import Site

if TYPE_CHECKING:
    from litestar.datastructures import FormMultiDict
    from sqlalchemy.ext.asyncio import AsyncSession

TIERS = {"basic": "Basic", "standard": "Standard", "premium": "Premium"}
SERVICE_STATUS_LABELS = {
    "draft": "Draft",
    "pending_approval": "Waiting for approval",
    "published": "Published",
    "paused": "Paused",
    "archived": "Archived",
}
REVISION_CHOICES = (
    ("0", "None"),
    ("1", "1"),
    ("2", "2"),
    ("3", "3"),
    ("5", "5"),
    ("10", "10"),
    ("-1", "Unlimited"),
)
DELIVERY_FILTERS = (
    ("", "Any time"),
    ("1", "24 hours"),
    ("3", "Up to 3 days"),
    ("7", "Up to 7 days"),
    ("14", "Up to 14 days"),
    ("30", "Up to 30 days"),
)
RATING_FILTERS = (
    ("", "Any rating"),
    ("4.5", "4.5 and up"),
    ("4", "4 and up"),
    ("3", "3 and up"),
)
"""The developer's average rating a service's card must reach."""
MAX_FAQ_ROWS = 3
MAX_REQUIREMENT_ROWS = 3
MAX_PRICE_MINOR = 10_000_000_00
PAGE_SIZE = 20
SERVICE_FIELDS = ("title", "description", "category", "skills", "currency", "fast_price", "fast_days")
PACKAGE_FIELDS = ("name", "price", "days", "revisions", "features")

_NOTICES = {
    "draft": ("success", "Saved as a draft. Only you can see it until you publish it."),
    "published": ("success", "Your service is published: clients can find and order it now."),
    "submitted": ("success", "Sent for approval: an administrator checks it before clients can see it."),
    "paused": ("success", "The service is paused: it is hidden and takes no orders until you resume it."),
    "resumed": ("success", "The service is published again."),
    "archived": ("success", "The service is archived for good. Past orders keep their contracts."),
    "saved": ("success", "Your changes are saved."),
}
_EDIT_NOTICES = {
    "image-added": ("success", "Image added."),
    "image-removed": ("success", "Image removed."),
}

Slugs = Annotated[list[str] | None, QueryParameter(max_items=40)]


# ---------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------


def revisions_text(revisions: int) -> str:
    """``-1`` → ``Unlimited``; ``0`` → ``None``."""
    if revisions < 0:
        return "Unlimited"
    return "None" if revisions == 0 else str(revisions)


def days_text(days: int | None) -> str:
    if days is None:
        return ""
    return "1 day" if days == 1 else f"{days} days"


def helpers(names: Names) -> dict[str, Any]:
    """Formatting functions every service template may call."""
    return {
        "money": format_money,
        "days": days_text,
        "revisions_text": revisions_text,
        "category_name": names.category,
        "skill_name": names.skill,
        "status_labels": SERVICE_STATUS_LABELS,
        "tiers": TIERS,
    }


async def render(
    request: AnyRequest, site: Site, template: str, values: dict[str, Any], *, status_code: int = 200
) -> Template:
    """A themed page (``services/<template>``)."""
    return await site.templates.page(request, f"services/{template}", values, status_code=status_code)


def card(service: schemas.ServiceOut, names: Names) -> dict[str, Any]:
    """What a service's card in a list shows."""
    return {
        "service": service,
        "url": f"/services/{service.id}",
        "price_from": format_money(service.price_from, service.currency or "USD")
        if service.price_from is not None
        else "",
        "fastest": days_text(service.fastest_delivery_days),
        "category": names.category(service.category),
        "skills": [names.skill(slug) for slug in service.skills],
        "excerpt": excerpt(service.description, 160),
    }


# ---------------------------------------------------------------------------
# Offering a service
# ---------------------------------------------------------------------------


def empty_service_form() -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(SERVICE_FIELDS, "")
    values["currency"] = "USD"
    for tier in TIERS:
        values[tier] = {**dict.fromkeys(PACKAGE_FIELDS, ""), "revisions": "1"}
    values["faq"] = [{"question": "", "answer": ""} for _ in range(MAX_FAQ_ROWS)]
    values["requirements"] = [""] * MAX_REQUIREMENT_ROWS
    return values


def _texts(form: FormMultiDict, name: str, count: int) -> list[str]:
    found = [value if isinstance(value, str) else "" for value in form.getall(name, [])][:count]
    return found + [""] * (count - len(found))


def _rows(filled: int, least: int, most: int) -> int:
    """How many rows a repeated field shows: at least ``least``, room for one more when
    ``filled`` (an edited service may have more than a new one starts with), at most ``most``."""
    return max(least, min(filled + 1, most))


def service_form_values(form: FormMultiDict) -> dict[str, Any]:
    values: dict[str, Any] = {name: form_text(form, name) for name in SERVICE_FIELDS}
    for tier in TIERS:
        values[tier] = {name: form_text(form, f"{tier}_{name}") for name in PACKAGE_FIELDS}
    faq_rows = max(MAX_FAQ_ROWS, min(len(form.getall("faq_question", [])), schemas.MAX_FAQ))
    questions = _texts(form, "faq_question", faq_rows)
    answers = _texts(form, "faq_answer", faq_rows)
    values["faq"] = [{"question": q, "answer": a} for q, a in zip(questions, answers, strict=True)]
    requirement_rows = max(
        MAX_REQUIREMENT_ROWS, min(len(form.getall("requirements", [])), schemas.MAX_REQUIREMENTS)
    )
    values["requirements"] = _texts(form, "requirements", requirement_rows)
    return values


def amount_input(minor: int) -> str:
    """Minor units as typed into a form (``1500``, ``62.50``)."""
    return format_amount(minor).replace(",", "")


def service_form_of(service: schemas.ServiceOut, names: Names) -> dict[str, Any]:
    """The form filled with a saved service (its extra-fast add-on in the add-on fields)."""
    values = empty_service_form()
    values.update(
        title=service.title,
        description=service.description,
        category=service.category,
        skills=", ".join(names.skill(slug) for slug in service.skills),
        currency=service.currency or "USD",
    )
    for package in service.packages:
        values[package.tier] = {
            "name": package.name,
            "price": amount_input(package.price),
            "days": str(package.delivery_days),
            "revisions": str(package.revisions),
            "features": "\n".join(package.features),
        }
    fast = next((addon for addon in service.addons if addon.kind == "extra_fast"), None)
    if fast is not None:
        values["fast_price"] = amount_input(fast.price)
        values["fast_days"] = str(fast.delivery_days_saved or "")
    faq = [{"question": pair.question, "answer": pair.answer} for pair in service.faq]
    rows = _rows(len(faq), MAX_FAQ_ROWS, schemas.MAX_FAQ)
    values["faq"] = faq + [{"question": "", "answer": ""} for _ in range(rows - len(faq))]
    questions = list(service.requirements)
    rows = _rows(len(questions), MAX_REQUIREMENT_ROWS, schemas.MAX_REQUIREMENTS)
    values["requirements"] = questions + [""] * (rows - len(questions))
    return values


def keep_what_the_form_omits(body: dict[str, Any], saved: schemas.ServiceOut) -> dict[str, Any]:
    """The edit form shows neither package descriptions nor add-ons other than extra-fast
    delivery (both can be set through the API): keep them as saved instead of dropping them.
    The extra-fast add-on keeps its id (and place) while the form still offers it."""
    described = {package.tier: package.description for package in saved.packages}
    packages = [{**row, "description": described.get(row["tier"], "")} for row in body["packages"]]
    fast = body["addons"][0] if body["addons"] else None
    addons: list[dict[str, Any]] = []
    for addon in saved.addons:
        if addon.kind == "extra_fast":
            if fast is not None:
                addons.append({**fast, "id": addon.id})
                fast = None
            continue
        addons.append(
            {
                "id": addon.id,
                "kind": addon.kind,
                "title": addon.title,
                "price": addon.price,
                "delivery_days_saved": addon.delivery_days_saved,
                "extra_revisions": addon.extra_revisions,
            }
        )
    if fast is not None:
        addons.append(fast)
    return {**body, "packages": packages, "addons": addons}


def _whole_number(text: str, low: int, high: int) -> int | None:
    try:
        number = int(text.strip())
    except ValueError:
        return None
    return number if low <= number <= high else None


def service_body(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The API body a service form describes, and what is wrong with it."""
    errors: dict[str, str] = {}
    title = " ".join(values["title"].split())
    if len(title) < 5:
        errors["title"] = "Give the service a title of at least 5 characters."
    if len(values["description"].strip()) < 20:
        errors["description"] = "Describe what you deliver in at least 20 characters."
    if not values["category"]:
        errors["category"] = "Pick a category."
    currency = values["currency"] if values["currency"] in CURRENCIES else ""
    if not currency:
        errors["currency"] = "Pick a currency from the list."
    packages: list[dict[str, Any]] = []
    for tier, label in TIERS.items():
        row = values[tier]
        if not row["price"].strip():
            continue
        money, problem = parse_rate(row["price"], currency or "USD", maximum=MAX_PRICE_MINOR)
        if problem or money is None or money["amount"] < 1:
            errors[f"{tier}_price"] = problem or "Enter a price above zero."
            continue
        days = _whole_number(row["days"], 1, 365)
        if days is None:
            errors[f"{tier}_days"] = "Enter the days to deliver, from 1 to 365."
        revisions = _whole_number(row["revisions"] or "0", -1, 20)
        if revisions is None:
            errors[f"{tier}_revisions"] = "Pick how many revisions are included."
        features = [line.strip() for line in row["features"].splitlines() if line.strip()]
        if len(features) > 10:
            errors[f"{tier}_features"] = "List at most 10 features, one per line."
        elif any(len(feature) > 100 for feature in features):
            errors[f"{tier}_features"] = "Keep each feature under 100 characters."
        packages.append(
            {
                "tier": tier,
                "name": row["name"].strip() or label,
                "price": money["amount"],
                "currency": currency or "USD",
                "delivery_days": days or 1,
                "revisions": revisions or 0,
                "features": features,
            }
        )
    addons: list[dict[str, Any]] = []
    if values["fast_price"].strip():
        money, problem = parse_rate(values["fast_price"], currency or "USD", maximum=MAX_PRICE_MINOR)
        if problem or money is None or money["amount"] < 1:
            errors["fast_price"] = problem or "Enter a price above zero."
        saved = _whole_number(values["fast_days"], 1, 364)
        if saved is None:
            errors["fast_days"] = "Enter how many days sooner you deliver (1 or more)."
        if money and saved:
            addons.append(
                {
                    "kind": "extra_fast",
                    "title": f"Extra-fast delivery ({days_text(saved)} sooner)",
                    "price": money["amount"],
                    "delivery_days_saved": saved,
                }
            )
    faq = []
    for index, pair in enumerate(values["faq"], start=1):
        question, answer = pair["question"].strip(), pair["answer"].strip()
        if question and answer:
            faq.append({"question": question, "answer": answer})
        elif question or answer:
            errors[f"faq_{index}"] = "Give both the question and its answer (or clear both)."
    body = {
        "title": title,
        "description": values["description"],
        "category": values["category"],
        "skills": split_list(values["skills"]),
        "packages": packages,
        "addons": addons,
        "faq": faq,
        "requirements": [q.strip() for q in values["requirements"] if q.strip()],
    }
    return body, errors


def revision_choices(form: dict[str, Any]) -> list[tuple[str, str]]:
    """The revision choices, plus any saved count the list lacks (set through the API), so
    that saving the form does not change it."""
    choices = list(REVISION_CHOICES)
    known = {value for value, _ in choices}
    for tier in TIERS:
        value = form[tier]["revisions"]
        if value and value not in known:
            choices.append((value, value))
            known.add(value)
    return choices


async def service_form_page(
    request: AnyRequest,
    site: Site,
    *,
    form: dict[str, Any],
    errors: dict[str, str] | None = None,
    mode: str = "new",
    listing_id: uuid.UUID | None = None,
    gallery: list[schemas.GalleryImage] | None = None,
    gallery_error: str | None = None,
    notices: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> Template:
    """``services/new.html`` or ``services/edit.html`` (both include ``_form.html``; the edit
    page also shows the saved ``gallery`` with its own upload and remove forms)."""
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        names = await load_names(session, site)
        skill_options = await skill_names(session, site)
        is_developer, verify = user.is_developer, needs_verification(site, user)
    form_errors = errors or {}
    return await render(
        request,
        site,
        f"{mode}.html",
        {
            **helpers(names),
            "form": form,
            "errors": form_errors,
            "field_errors": [key for key in form_errors if key != "form"],
            "tree": names.tree,
            "skills": skill_options,
            "currencies": CURRENCIES,
            "revision_choices": revision_choices(form),
            "is_developer": is_developer,
            "needs_verification": verify,
            "listing_id": listing_id,
            "gallery": gallery or [],
            "gallery_room": max(schemas.MAX_GALLERY - len(gallery or []), 0),
            "max_gallery": schemas.MAX_GALLERY,
            "gallery_error": gallery_error,
            "notices": notices or [],
        },
        status_code=status_code,
    )


@get("/services/new", include_in_schema=False, name="services:new")
async def new_service(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """The offer-a-service form (or how to turn on the developer role)."""
    if principal_of(request) is None:
        return to_login("/services/new")
    return await service_form_page(request, site, form=empty_service_form())


@post("/services/new", include_in_schema=False, name="services:create")
async def create_service(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Save the form as a draft or publish it; on a mistake show it again with the input kept."""
    if principal_of(request) is None:
        return to_login("/services/new")
    form = await request.form()
    values = service_form_values(form)
    publish = form_text(form, "action") == "publish"
    body, errors = service_body(values)
    status_code = 400
    async with site.db.reading() as session:
        user = await current_user(request, session, site)
        if not user.is_developer:
            return await service_form_page(request, site, form=values, status_code=403)
    if publish and not body["packages"] and not errors:
        errors["packages"] = "Price at least one package to publish (or save a draft)."
    data: schemas.ServiceIn | None = None
    if not errors:
        try:
            data = msgspec.convert({**body, "publish": publish}, schemas.ServiceIn)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    listing_id = None
    if data is not None and not errors:
        try:
            async with site.db.transaction() as session:
                developer = await current_user(request, session, site)
                listing_id = (await ListingService(site).create(session, developer, data)).id
        except HTTPException as exc:
            if not refused(exc):
                raise
            errors.update(plain_errors(errors_of(exc)))
            status_code = exc.status_code
    if errors or listing_id is None:
        return await service_form_page(request, site, form=values, errors=errors, status_code=status_code)
    return redirect(f"/services/{listing_id}?done={'published' if publish else 'draft'}")


async def own_listing(
    service: ListingService,
    session: AsyncSession,
    listing_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    lock: bool = False,
) -> Listing:
    """The listing if ``user_id`` offers it; a 404 for anyone else, even when it is
    published (its edit form is nobody else's business)."""
    try:
        return await service.owned(session, listing_id, user_id, lock=lock)
    except PermissionDeniedException:
        raise NotFoundException("No such service.") from None


async def saved_edit_page(
    request: AnyRequest,
    site: Site,
    listing_id: uuid.UUID,
    *,
    notices: list[tuple[str, str]] | None = None,
    gallery_error: str | None = None,
    status_code: int = 200,
) -> Page:
    """The edit page filled with the saved service (archived ones: their page instead, unless
    an error is to be shown)."""
    principal = require_principal(request)
    service = ListingService(site)
    async with site.db.reading() as session:
        listing = await own_listing(service, session, listing_id, principal.user_id)
        if listing.status == ListingStatus.ARCHIVED and gallery_error is None:
            return redirect(f"/services/{listing_id}")
        saved = await service.out(session, listing, principal.user_id)
        values = service_form_of(saved, await load_names(session, site))
    return await service_form_page(
        request,
        site,
        form=values,
        mode="edit",
        listing_id=listing_id,
        gallery=saved.gallery,
        gallery_error=gallery_error,
        notices=notices,
        status_code=status_code,
    )


@get("/services/{listing_id:uuid}/edit", include_in_schema=False, name="services:edit")
async def edit_service(
    request: AnyRequest,
    listing_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    done: FromQuery[str | None] = None,
) -> Page:
    """The service form filled with the saved service (drafts, published and paused ones),
    and its gallery."""
    notice = _EDIT_NOTICES.get(done or "")
    return await saved_edit_page(request, site, listing_id, notices=[notice] if notice else None)


@post("/services/{listing_id:uuid}/edit", include_in_schema=False, name="services:update")
async def update_service(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Save the edited service through the API's update; on a mistake (ours, the service's
    or a ``validate_listing`` plugin's) show the form again with the input kept."""
    if principal_of(request) is None:
        return to_login(f"/services/{listing_id}/edit")
    values = service_form_values(await request.form())
    body, errors = service_body(values)
    service = ListingService(site)
    async with site.db.reading() as session:
        user_id = (await current_user(request, session, site)).id
        saved = await service.out(session, await own_listing(service, session, listing_id, user_id), user_id)
    status_code = 400
    data: schemas.ServiceUpdate | None = None
    if not errors:
        try:
            data = msgspec.convert(keep_what_the_form_omits(body, saved), schemas.ServiceUpdate)
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    if data is not None and not errors:
        try:
            async with site.db.transaction() as session:
                listing = await own_listing(service, session, listing_id, user_id, lock=True)
                # The form never sends ``gallery``, so no image is dropped: nothing to delete.
                await service.update(session, listing, data)
        except HTTPException as exc:
            if not refused(exc):
                raise
            errors.update(plain_errors(errors_of(exc)))
            status_code = exc.status_code
    if errors:
        return await service_form_page(
            request,
            site,
            form=values,
            errors=errors,
            mode="edit",
            listing_id=listing_id,
            gallery=saved.gallery,
            status_code=status_code,
        )
    return redirect(f"/services/{listing_id}?done=saved")


def _gallery_message(exc: HTTPException) -> str:
    return " ".join(plain_errors(errors_of(exc, default_field="image")).values())


@post("/services/{listing_id:uuid}/gallery", include_in_schema=False, name="services:gallery-add")
async def add_gallery_image(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Add the uploaded image to the service's gallery, checked and re-encoded like the API's;
    a refusal (not an image, too large, the gallery full) shows next to the upload field."""
    if principal_of(request) is None:
        return to_login(f"/services/{listing_id}/edit")
    service = ListingService(site)
    try:
        async with site.db.reading() as session:  # someone else's service is a 404 before any image work
            user_id = (await current_user(request, session, site)).id
            service.check_gallery_room(await own_listing(service, session, listing_id, user_id))
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await saved_edit_page(
            request, site, listing_id, gallery_error=_gallery_message(exc), status_code=exc.status_code
        )
    upload = form_file(await request.form(), "image")
    if upload is None:
        return await saved_edit_page(
            request, site, listing_id, gallery_error="Choose an image to upload.", status_code=400
        )
    try:
        stored = await store_image(
            site.plugins.storage(site), await upload.read(), folder="services", settings=site.settings.uploads
        )
    except HTTPException as exc:  # not an image, too large
        return await saved_edit_page(
            request, site, listing_id, gallery_error=str(exc.detail), status_code=exc.status_code
        )
    try:
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await own_listing(service, session, listing_id, developer.id, lock=True)
            service.add_gallery_image(listing, key=stored.key, width=stored.width, height=stored.height)
            service.gallery_changed(session, listing)
    except HTTPException as exc:  # filled up (or archived) meanwhile
        await delete_files(site, [stored.key])
        if not refused(exc):
            raise
        return await saved_edit_page(
            request, site, listing_id, gallery_error=_gallery_message(exc), status_code=exc.status_code
        )
    except Exception:
        await delete_files(site, [stored.key])
        raise
    return redirect(f"/services/{listing_id}/edit?done=image-added#gallery")


@post("/services/{listing_id:uuid}/gallery/delete", include_in_schema=False, name="services:gallery-delete")
async def remove_gallery_image(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Remove the image ``key`` names from the gallery, through the API's update (the file is
    deleted after the commit). An image already gone is not an error (a second click)."""
    if principal_of(request) is None:
        return to_login(f"/services/{listing_id}/edit")
    key = form_text(await request.form(), "key")
    service = ListingService(site)
    dropped: list[str] = []
    try:
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await own_listing(service, session, listing_id, developer.id, lock=True)
            keys = [image["key"] for image in listing.gallery]
            if key in keys:
                kept = [k for k in keys if k != key]
                dropped = await service.update(session, listing, schemas.ServiceUpdate(gallery=kept))
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await saved_edit_page(
            request, site, listing_id, gallery_error=_gallery_message(exc), status_code=exc.status_code
        )
    await delete_files(site, dropped)
    done = "?done=image-removed" if dropped else ""
    return redirect(f"/services/{listing_id}/edit{done}#gallery")


# ---------------------------------------------------------------------------
# The service page and ordering
# ---------------------------------------------------------------------------


def empty_order_form(service: schemas.ServiceOut) -> dict[str, Any]:
    tiers = [p.tier for p in service.packages]
    package = "standard" if "standard" in tiers else (tiers[0] if tiers else "")
    return {"package": package, "addons": [], "answers": [""] * len(service.requirements)}


async def service_page(
    request: AnyRequest,
    site: Site,
    listing_id: uuid.UUID,
    *,
    notices: list[tuple[str, str]] | None = None,
    order_form: dict[str, Any] | None = None,
    order_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    """``services/detail.html``."""
    principal = principal_of(request)
    viewer = principal.user_id if principal else None
    service = ListingService(site)
    async with site.db.reading() as session:
        listing = await service.visible(session, listing_id, viewer)
        out = await service.out(session, listing, viewer)
        names = await load_names(session, site)
        me = None
        if viewer is not None:
            user = await current_user(request, session, site)
            me = {
                "id": user.id,
                "name": user.display_name,
                "needs_verification": needs_verification(site, user),
            }
        owner = await session.get(User, out.developer_id)
        developer = await ProfileService(site).public_user(session, owner) if owner is not None else None
    features: list[str] = []
    for package in out.packages:
        features += [feature for feature in package.features if feature not in features]
    return await render(
        request,
        site,
        "detail.html",
        {
            **helpers(names),
            "service": out,
            "description_html": Markup(out.description_html),
            "category": names.category(out.category),
            "skills_named": [names.skill(slug) for slug in out.skills],
            "features": features,
            "price_from": format_money(out.price_from, out.currency or "USD")
            if out.price_from is not None
            else "",
            "developer": developer,
            "me": me,
            "notices": notices or [],
            "order_form": order_form or empty_order_form(out),
            "order_errors": order_errors or {},
            "can_order": out.status == "published" and not out.is_owner and bool(out.packages),
        },
        status_code=status_code,
    )


@get("/services/{listing_id:uuid}", include_in_schema=False, name="services:detail")
async def show_service(
    request: AnyRequest,
    listing_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    done: FromQuery[str | None] = None,
) -> Template:
    """A service: its packages, add-ons, FAQ, developer, and the order form."""
    notice = _NOTICES.get(done or "")
    return await service_page(request, site, listing_id, notices=[notice] if notice else None)


@post("/services/{listing_id:uuid}/order", include_in_schema=False, name="services:order")
async def order_service(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """Buy a package (with add-ons and answers): opens a contract and shows it."""
    if principal_of(request) is None:
        return to_login(f"/services/{listing_id}")
    form = await request.form()
    values: dict[str, Any] = {
        "package": form_text(form, "package"),
        "addons": [value for value in form.getall("addons", []) if isinstance(value, str)],
        "answers": [value if isinstance(value, str) else "" for value in form.getall("answers", [])],
    }
    errors: dict[str, str] = {}
    if values["package"] not in TIERS:
        errors["package"] = "Pick a package."
    data: schemas.OrderIn | None = None
    if not errors:
        try:
            data = msgspec.convert(
                {"package": values["package"], "addons": values["addons"], "requirements": values["answers"]},
                schemas.OrderIn,
            )
        except msgspec.ValidationError as exc:
            errors.update(schema_errors(exc))
    status_code = 400
    contract_id = None
    if data is not None and not errors:
        try:
            async with site.db.transaction() as session:
                buyer = await current_user(request, session, site)
                contract_id = (await OrderService(site).place(session, buyer, listing_id, data)).contract_id
        except HTTPException as exc:
            if not refused(exc):
                raise
            errors.update(plain_errors(errors_of(exc, default_field="form")))
            status_code = exc.status_code
    if errors or contract_id is None:
        notices = [("error", errors["form"])] if "form" in errors else []
        return await service_page(
            request,
            site,
            listing_id,
            notices=notices,
            order_form=values,
            order_errors=errors,
            status_code=status_code,
        )
    return redirect(f"/contracts/{contract_id}?ordered=1")


async def _service_action(request: AnyRequest, site: Site, listing_id: uuid.UUID, action: str) -> Page:
    """Publish, pause, resume or archive; a refusal shows on the service page."""
    if principal_of(request) is None:
        return to_login(f"/services/{listing_id}")
    service = ListingService(site)
    try:
        async with site.db.transaction() as session:
            developer = await current_user(request, session, site)
            listing = await service.owned(session, listing_id, developer.id, lock=True)
            if action == "publish":
                await service.publish(session, developer, listing)
            elif action == "pause":
                await service.pause(session, listing)
            elif action == "resume":
                await service.resume(session, listing)
            else:
                await service.archive(session, listing)
    except HTTPException as exc:
        if not refused(exc):
            raise
        message = " ".join(plain_errors(errors_of(exc)).values())
        return await service_page(
            request, site, listing_id, notices=[("error", message)], status_code=exc.status_code
        )
    done = {"publish": "published", "pause": "paused", "resume": "resumed", "archive": "archived"}[action]
    if action == "publish" and site.settings.moderation.require_listing_approval:
        done = "submitted"
    return redirect(f"/services/{listing_id}?done={done}")


@post("/services/{listing_id:uuid}/publish", include_in_schema=False, name="services:publish")
async def publish_service(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _service_action(request, site, listing_id, "publish")


@post("/services/{listing_id:uuid}/pause", include_in_schema=False, name="services:pause")
async def pause_service(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _service_action(request, site, listing_id, "pause")


@post("/services/{listing_id:uuid}/resume", include_in_schema=False, name="services:resume")
async def resume_service(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _service_action(request, site, listing_id, "resume")


@post("/services/{listing_id:uuid}/archive", include_in_schema=False, name="services:archive")
async def archive_service(
    request: AnyRequest, listing_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    return await _service_action(request, site, listing_id, "archive")


PAGE_ROUTES: list[Any] = [
    new_service,
    create_service,
    edit_service,
    update_service,
    add_gallery_image,
    remove_gallery_image,
    show_service,
    order_service,
    publish_service,
    pause_service,
    resume_service,
    archive_service,
]
"""The service pages the listings plugin registers."""
