"""recommendations: the built-in recommender — projects for a developer, developers for a
project, services like a service — on skill overlap (through the taxonomy's aliases),
budget or price fit, reputation and freshness, each suggestion explained in words.

* :class:`~.recommender.SkillRecommender` answers ``get_recommender`` last, so any other
  recommender (the ``semantic_recommendations`` plugin, a third party's) wins;
* ``recommendation_skills`` (own migration branch, ``recommendations``) indexes the skills of
  open projects and published services for candidate lookups; event handlers keep it current
  and ``mercato recommendations reindex`` rebuilds it;
* the API ``/api/v1/recommendations/{projects,developers,services}`` and three boxes in the
  theme (:mod:`.pages`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl

from .commands import recommendations
from .index import event_handlers
from .models import SkillPosting
from .recommender import SkillRecommender

if TYPE_CHECKING:
    import click

    from mercato.core.events import EventHandler
    from mercato.core.site import Site

PLUGIN_ID = "recommendations"
PACKAGE_DIR = Path(__file__).parent

__all__ = ["PLUGIN_ID", "SkillRecommender"]


@hookimpl(trylast=True)
def get_recommender(site: Site) -> SkillRecommender:
    """One recommender per site, kept in ``site.state``."""
    recommender = site.state.get(PLUGIN_ID)
    if not isinstance(recommender, SkillRecommender):
        recommender = site.state[PLUGIN_ID] = SkillRecommender(site)
    return recommender


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [SkillPosting]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_event_handlers(site: Site) -> list[EventHandler]:
    return event_handlers()


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from .routes import RecommendationsController

    return [RecommendationsController]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
async def extra_template_vars(site: Site, request: Any, template_name: str) -> dict[str, Any]:
    """``recommended_projects`` on the dashboard, ``fitting_developers`` on one's own project,
    ``similar_services`` on a published service."""
    from .pages import template_vars

    return await template_vars(site, request, template_name)


@hookimpl
def register_commands() -> list[click.Command]:
    return [recommendations]
