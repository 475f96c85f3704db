"""semantic_recommendations: recommendations that understand text, with an offline
embedding model (WordLlama, whose weights ship inside the ``wordllama`` wheel: nothing is
downloaded). Install it with ``pip install "mercato[ml]"``.

* When ``wordllama`` is importable, :class:`~.recommender.SemanticRecommender` answers
  ``get_recommender`` before the built-in ``recommendations`` (whose candidates it re-ranks);
  turn it off with ``[plugins] disabled = ["semantic_recommendations"]``. Without the package
  it contributes no recommender, handlers or command, and :data:`UNAVAILABLE` says why
  (``mercato plugins`` shows it).
* Embeddings of projects, services and developer profiles are computed by event handlers and
  stored in ``semantic_embeddings`` (own migration branch, ``semantic_recommendations``; the
  table exists either way, so a site's schema does not depend on what is installed).
  ``mercato semantic embed`` computes them all at once.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mercato import hookimpl

from .models import Embedding

if TYPE_CHECKING:
    import click

    from mercato.core.events import EventHandler
    from mercato.core.recommend import Recommender
    from mercato.core.site import Site

PLUGIN_ID = "semantic_recommendations"
PACKAGE_DIR = Path(__file__).parent
UNAVAILABLE: str | None = (
    None
    if importlib.util.find_spec("wordllama") is not None
    else 'inactive: the `wordllama` package is not installed (pip install "mercato[ml]")'
)
"""Why the plugin does nothing, or ``None`` when it works."""


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [Embedding]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


if UNAVAILABLE is None:

    @hookimpl
    def get_recommender(site: Site) -> Recommender | None:
        """The semantic recommender over the next one; one per site."""
        from .recommender import SemanticRecommender, next_recommender

        recommender = site.state.get(PLUGIN_ID)
        if not isinstance(recommender, SemanticRecommender):
            base = next_recommender(site, sys.modules[__name__])
            if base is None:
                return None
            recommender = site.state[PLUGIN_ID] = SemanticRecommender(base)
        return recommender

    @hookimpl
    def register_event_handlers(site: Site) -> list[EventHandler]:
        from .embeddings import event_handlers

        return event_handlers()

    @hookimpl
    def register_commands() -> list[click.Command]:
        from .commands import semantic

        return [semantic]
