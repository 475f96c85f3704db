"""The signals a suggestion is scored on, each a number in [0, 1] with the words that explain it.

* **skills** — how many of the viewer's skills the item names, after mapping every spelling
  through the taxonomy (``py`` and ``Python`` are ``python``);
* **budget** — a developer's hourly rate against a project's budget (or a service's price
  against another's);
* **reputation** — the rating of the other party (:mod:`mercato.core.reputation`), damped while
  there are few reviews; neutral when the site keeps no reputation;
* **freshness** — newer items first (half-life :data:`FRESH_HALF_LIFE_DAYS` days).

:data:`WEIGHTS` blends them; a semantic recommender adds its own signal beside these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from mercato.core.accounts.forms import format_rate
from mercato.core.accounts.schemas import Money
from mercato.core.catalog.display import format_money
from mercato.core.projects.pages import time_ago

WEIGHTS = {"skills": 0.55, "budget": 0.15, "reputation": 0.10, "freshness": 0.20}
"""How much each signal counts; they sum to 1."""
FRESH_HALF_LIFE_DAYS = 7.0
FRESH_REASON_DAYS = 14
"""Only items posted within this many days say when they were posted."""
FIXED_PRICE_HOURS = 8
"""A fixed budget "fits" a rate when it pays at least this many hours at that rate."""
REPUTATION_PRIOR = 3
"""Reviews it takes before a rating counts half: one 5-star review is not a reputation."""
NEUTRAL = 0.5


@dataclass(frozen=True)
class Signal:
    """A score in [0, 1] and the words that explain it (none when it says nothing)."""

    value: float
    reason: str | None = None


@dataclass
class Taxonomy:
    """Every spelling of a skill (slug, name, alias; case-folded) mapped to its slug, and the
    names to show."""

    canonical: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: Iterable[tuple[str, str, list[str]]]) -> Taxonomy:
        taxonomy = cls()
        for slug, name, aliases in rows:
            taxonomy.names[slug] = name
            for spelling in (slug, name, *aliases):
                taxonomy.canonical.setdefault(spelling.strip().casefold(), slug)
        return taxonomy

    def slugs(self, skills: Iterable[str]) -> list[str]:
        """``skills`` as canonical slugs, in order, each once (unknown ones kept as written)."""
        out: dict[str, None] = {}
        for skill in skills:
            key = skill.strip().casefold()
            if key:
                out.setdefault(self.canonical.get(key, key), None)
        return list(out)


def skill_match(
    wanted: list[str], offered: list[str], reason: str = "Matches {shared} of your {total} {skills}"
) -> Signal:
    """How much of the ``wanted`` skills ``offered`` covers, weighing also how much of the
    offered list is wanted (so, for someone with A, B and C, a project needing A, B and C
    ranks above one needing only A). ``reason`` words it, with ``shared``, ``total`` (of
    ``wanted``) and ``skills`` (the noun)."""
    if not wanted or not offered:
        return Signal(0.0)
    shared = len(set(wanted) & set(offered))
    if not shared:
        return Signal(0.0)
    value = 0.6 * shared / len(wanted) + 0.4 * shared / len(offered)
    noun = "skill" if len(wanted) == 1 else "skills"
    return Signal(value, reason.format(shared=shared, total=len(wanted), skills=noun))


def rate_fits_budget(
    rate: int | None, rate_currency: str, *, hourly: bool, budget_max: int, currency: str, project_side: bool
) -> Signal:
    """A developer's hourly ``rate`` against a project's budget: an hourly budget fits a rate at
    or under its maximum; a fixed one fits when it pays :data:`FIXED_PRICE_HOURS` hours. Above
    that the score falls with the ratio. ``project_side`` words the reason for a developer
    (``Budget fits your rate``) or a client (``Rate $60/hr fits your budget``)."""
    if rate is None or rate <= 0 or rate_currency != currency:
        return Signal(NEUTRAL)
    affordable = budget_max if hourly else budget_max / FIXED_PRICE_HOURS
    if rate <= affordable:
        if project_side:
            return Signal(1.0, "Budget fits your rate")
        return Signal(1.0, f"Rate {format_rate(Money(amount=rate, currency=rate_currency))} fits your budget")
    return Signal(max(0.0, affordable / rate) ** 2)


def price_similarity(price: int | None, other: int | None, other_currency: str, *, currency: str) -> Signal:
    """Two services' starting prices: 1 when equal, lower as they part."""
    if price is None or other is None or price <= 0 or other <= 0 or currency != other_currency:
        return Signal(NEUTRAL)
    value = min(price, other) / max(price, other)
    if value >= 0.67:
        return Signal(value, f"Similar price (from {format_money(other, other_currency)})")
    return Signal(value)


def reputation(rating_avg: float | None, rating_count: int, *, whose: str = "Rated") -> Signal:
    """A rating out of 5 damped by :data:`REPUTATION_PRIOR`; neutral without reviews."""
    if rating_avg is None or rating_count <= 0:
        return Signal(NEUTRAL)
    confidence = rating_count / (rating_count + REPUTATION_PRIOR)
    value = NEUTRAL + (rating_avg / 5.0 - NEUTRAL) * confidence
    review = "review" if rating_count == 1 else "reviews"
    return Signal(value, f"{whose} {rating_avg:.1f} from {rating_count} {review}")


def freshness(published_at: datetime | None, now: datetime) -> Signal:
    """1 for just now, half every :data:`FRESH_HALF_LIFE_DAYS` days."""
    if published_at is None:
        return Signal(0.0)
    days = max(0.0, (now - published_at).total_seconds() / 86_400)
    value = math.exp(-math.log(2) * days / FRESH_HALF_LIFE_DAYS)
    return Signal(value, f"Posted {time_ago(published_at, now)}" if days < FRESH_REASON_DAYS else None)


def blend(signals: dict[str, Signal], weights: dict[str, float] | None = None) -> tuple[float, list[str]]:
    """The weighted score and the reasons, strongest signal first."""
    weights = weights or WEIGHTS
    score = sum(weights[name] * signal.value for name, signal in signals.items())
    ordered = sorted(signals.items(), key=lambda item: -weights[item[0]] * item[1].value)
    return round(score, 4), [signal.reason for _, signal in ordered if signal.reason]
