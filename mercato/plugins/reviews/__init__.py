"""reviews: after a contract ends with money paid, each party reviews the other once: an
overall rating, sub-ratings for the other's role and a comment. Reviews are blind until both
are in or ``review_window_days`` pass; the reviewed person may reply once; administrators hide
reported reviews through moderation.

Settings: ``[plugins.reviews] review_window_days`` (default 14). Its table, ``reviews``, is on
its own migration branch, ``reviews``. Events: ``review.published``, ``review.hidden``,
``review.restored``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl

from .models import Review
from .service import PLUGIN_ID, ReviewService, ReviewSettings

if TYPE_CHECKING:
    from mercato.core.moderation import ReportSubject
    from mercato.core.site import Site
    from mercato.core.timers import TimerHandler

PACKAGE_DIR = Path(__file__).parent


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [Review]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_settings() -> dict[str, type[Any]]:
    return {PLUGIN_ID: ReviewSettings}


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from .pages import PAGE_ROUTES
    from .routes import ReviewsController

    return [ReviewsController, *PAGE_ROUTES]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
def register_static_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "static"]


@hookimpl
def register_timer_handlers(site: Site) -> list[TimerHandler]:
    """Blind reviews publish when the review window closes."""
    return ReviewService(site).timer_handlers()


@hookimpl
def register_report_subjects(site: Site) -> list[ReportSubject]:
    from .moderation import review_subject

    return [review_subject(site)]


@hookimpl
async def extra_template_vars(site: Site, request: Any, template_name: str) -> dict[str, Any]:
    """The contract page's reviews (``contract_reviews``) and the profile's (``profile_reviews``)."""
    if request is None or template_name not in ("contracts/contract.html", "accounts/profile.html"):
        return {}
    from .pages import contract_vars, profile_vars

    if template_name == "contracts/contract.html":
        return await contract_vars(site, request)
    return await profile_vars(site, request)


@hookimpl
async def seed_demo_data(site: Site) -> None:
    """Completed contracts with both parties' reviews, so profiles show a track record."""
    from .demo import seed_reviews

    await seed_reviews(site)
