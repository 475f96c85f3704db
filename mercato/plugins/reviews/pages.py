"""The reviews plugin's pages: the review form and both reviews on a contract's page, the reply
form, a person's reviews on their profile, and the page of all of them.

The contract and profile pages are the core's; this plugin adds its part through
``extra_template_vars``. A refused form renders the contract page again with the errors next
to the fields: the form's state travels on ``request.state``.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from mercato.core.accounts.forms import AnyRequest, Page, errors_of, form_text, redirect, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.catalog.display import refused
from mercato.core.contracts.pages import contract_page, problem_text
from mercato.core.projects.pages import time_ago
from mercato.core.site import Site

from .routes import PersonOut, contract_reviews_out, names_of, public_reviews
from .service import MAX_COMMENT, MAX_REPLY, SUB_RATING_LABELS, SUB_RATINGS, ReviewService

FORM_STATE = "reviews_form"
"""``request.state`` key: a refused form's ``{"errors", "values", "form"}``."""
PROFILE_REVIEWS = 3
PAGE_SIZE = 20
NOTICES = {
    "reviewed": "Your review is in.",
    "replied": "Your reply is published under the review.",
}
ROLE_WORDS = {"developer": "as a developer", "client": "as a client"}


def _form_state(request: AnyRequest) -> dict[str, Any]:
    found = request.state.get(FORM_STATE)
    return found if isinstance(found, dict) else {}


async def contract_vars(site: Site, request: AnyRequest) -> dict[str, Any]:
    """``contract_reviews`` for the contract page (nothing for a contract that cannot be reviewed)."""
    principal = principal_of(request)
    contract_id = request.path_params.get("contract_id")
    if principal is None or not isinstance(contract_id, uuid.UUID):
        return {}
    service = ReviewService(site)
    async with site.db.reading() as session:
        try:
            found = await service.for_party(session, contract_id, principal.user_id)
        except HTTPException:
            return {}
        if not found.eligible:
            return {}
        out = await contract_reviews_out(session, found)
        other = (await names_of(session, [found.other_id])).get(found.other_id, "the other party")
    state = _form_state(request)
    done = request.query_params.get("reviews")
    return {
        "contract_reviews": {
            "contract_id": contract_id,
            "state": out.state,
            "can_review": out.can_review,
            "closes_at": out.closes_at,
            "mine": out.mine,
            "theirs": out.theirs,
            "other_name": other,
            "asked": [(name, SUB_RATING_LABELS[name]) for name in out.ratings_asked],
            "labels": SUB_RATING_LABELS,
            "errors": state.get("errors", {}) if state.get("form") == "review" else {},
            "form_values": state.get("values", {}) if state.get("form") == "review" else {},
            "reply_error": state.get("errors", {}).get("body", "") if state.get("form") == "reply" else "",
            "reply_value": state.get("values", {}).get("body", "") if state.get("form") == "reply" else "",
            "notice": NOTICES.get(done or "", ""),
            "max_comment": MAX_COMMENT,
            "max_reply": MAX_REPLY,
            "viewer": principal.user_id,
            "ago": time_ago,
        }
    }


async def profile_vars(site: Site, request: AnyRequest) -> dict[str, Any]:
    """``profile_reviews`` for a public profile: the latest few, how many, the average."""
    user_id = request.path_params.get("user_id")
    if not isinstance(user_id, uuid.UUID):
        return {}
    service = ReviewService(site)
    async with site.db.reading() as session:
        try:
            page = await public_reviews(session, site, user_id, limit=PROFILE_REVIEWS, cursor=None)
        except HTTPException:
            return {}
        count, average = await service.summary(session, user_id)
    return {
        "profile_reviews": {
            "user_id": user_id,
            "reviews": page.items,
            "count": count,
            "average": average,
            "more": count > len(page.items),
            "labels": SUB_RATING_LABELS,
            "role_words": ROLE_WORDS,
            "ago": time_ago,
        }
    }


def _rating(text: str) -> int | None:
    return int(text) if text.isdigit() else None


@post("/contracts/{contract_id:uuid}/reviews", include_in_schema=False, name="reviews:write")
async def write_review(
    request: AnyRequest, contract_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    """The review form on the contract page: stars, the sub-ratings and a comment."""
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    form = await request.form()
    values = {name: form_text(form, name) for name in ("rating", "comment", *SUB_RATING_LABELS)}
    service = ReviewService(site)
    errors: dict[str, str] = {}
    status_code = 400
    try:
        async with site.db.reading() as session:
            found = await service.for_party(session, contract_id, principal.user_id)  # 404 for strangers
            asked = SUB_RATINGS[found.subject_role]
        rating = _rating(values["rating"])
        if rating is None:
            errors["rating"] = "Choose from 1 to 5 stars."
        ratings: dict[str, int] = {}
        for name in asked:
            value = _rating(values[name])
            if value is None:
                errors[name] = f"Rate {SUB_RATING_LABELS[name].lower()} from 1 to 5."
            else:
                ratings[name] = value
        if not errors:
            assert rating is not None
            async with site.db.transaction() as session:
                await service.write(
                    session,
                    contract_id,
                    principal.user_id,
                    rating=rating,
                    ratings=ratings,
                    comment=values["comment"][:MAX_COMMENT],
                )
    except HTTPException as exc:
        if not refused(exc):
            raise
        found_errors = errors_of(exc)
        errors = {key.removeprefix("ratings."): message for key, message in found_errors.items()}
        if "form" in errors:
            errors["form"] = problem_text(exc)
        status_code = exc.status_code
    if errors:
        request.state[FORM_STATE] = {"form": "review", "errors": errors, "values": values}
        return await contract_page(request, site, contract_id, status_code=status_code)
    return redirect(f"/contracts/{contract_id}?reviews=reviewed#reviews")


@post(
    "/contracts/{contract_id:uuid}/reviews/{review_id:uuid}/reply",
    include_in_schema=False,
    name="reviews:reply",
)
async def reply(
    request: AnyRequest,
    contract_id: FromPath[uuid.UUID],
    review_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
) -> Page:
    """The reviewed person's one reply, from the contract page."""
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/contracts/{contract_id}")
    body = form_text(await request.form(), "body")
    service = ReviewService(site)
    async with site.db.reading() as session:
        found = await service.for_party(session, contract_id, principal.user_id)  # 404 for strangers
        if found.theirs is None or found.theirs.id != review_id:
            raise HTTPException(status_code=404, detail="No such review.")
    try:
        if not body.strip():
            raise HTTPException(status_code=400, detail="Write your reply.")
        async with site.db.transaction() as session:
            await service.reply(session, review_id, principal.user_id, body[:MAX_REPLY])
    except HTTPException as exc:
        if not refused(exc):
            raise
        request.state[FORM_STATE] = {
            "form": "reply",
            "errors": {"body": problem_text(exc)},
            "values": {"body": body},
        }
        return await contract_page(request, site, contract_id, status_code=exc.status_code)
    return redirect(f"/contracts/{contract_id}?reviews=replied#reviews")


@get("/users/{user_id:uuid}/reviews", include_in_schema=False, name="reviews:user")
async def user_reviews(
    request: AnyRequest,
    user_id: FromPath[uuid.UUID],
    site: NamedDependency[Site],
    cursor: FromQuery[str | None] = None,
) -> Template:
    """Everything people said about someone after working with them, newest first."""
    service = ReviewService(site)
    async with site.db.reading() as session:
        page = await public_reviews(session, site, user_id, limit=PAGE_SIZE, cursor=cursor)
        count, average = await service.summary(session, user_id)
        person = PersonOut(id=user_id, display_name=(await names_of(session, [user_id]))[user_id])
    return await site.templates.page(
        request,
        "reviews/user_reviews.html",
        {
            "person": person,
            "reviews": page.items,
            "next_cursor": page.next_cursor,
            "first_page": not cursor,
            "count": count,
            "average": average,
            "labels": SUB_RATING_LABELS,
            "role_words": ROLE_WORDS,
            "ago": time_ago,
        },
    )


PAGE_ROUTES: list[Any] = [write_review, reply, user_reviews]
