"""The canonical skills list is well-formed: stable slugs, known categories, unambiguous aliases."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import mercato

SKILLS_FILE = Path(mercato.__file__).parent / "core" / "accounts" / "skills.toml"
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CATEGORIES = {
    "languages", "frontend", "backend", "mobile", "data-ml", "databases", "devops-cloud",
    "testing-qa", "security", "design", "blockchain", "embedded-iot", "game-dev", "practices",
}  # fmt: skip
FIELDS = {"slug", "name", "category", "aliases"}


@pytest.fixture(scope="module")
def skills() -> list[dict[str, Any]]:
    with SKILLS_FILE.open("rb") as fh:
        data = tomllib.load(fh)
    assert set(data) == {"skill"}, "only [[skill]] tables belong in the file"
    entries = data["skill"]
    assert isinstance(entries, list)
    return entries


def test_count_is_a_curated_list_not_a_dump(skills: list[dict[str, Any]]) -> None:
    assert 180 <= len(skills) <= 260


def test_every_skill_has_exactly_the_fields_and_none_is_empty(skills: list[dict[str, Any]]) -> None:
    for skill in skills:
        assert set(skill) == FIELDS, skill
        for field in ("slug", "name", "category"):
            value = skill[field]
            assert isinstance(value, str), skill
            assert value.strip() == value != "", skill
        aliases = skill["aliases"]
        assert isinstance(aliases, list), skill
        for alias in aliases:
            assert isinstance(alias, str), skill
            assert alias.strip() == alias != "", skill
            assert "  " not in alias, skill


def test_slugs_match_the_pattern_and_are_unique(skills: list[dict[str, Any]]) -> None:
    slugs = [skill["slug"] for skill in skills]
    bad = [slug for slug in slugs if not SLUG.fullmatch(slug) or len(slug) > 64]
    assert bad == []
    assert [slug for slug, n in Counter(slugs).items() if n > 1] == []


def test_names_are_unique_ignoring_case(skills: list[dict[str, Any]]) -> None:
    assert [skill["name"] for skill in skills if len(skill["name"]) > 100] == []
    names = Counter(skill["name"].casefold() for skill in skills)
    assert [name for name, n in names.items() if n > 1] == []


def test_categories_are_the_known_ones_and_all_are_used(skills: list[dict[str, Any]]) -> None:
    used = Counter(skill["category"] for skill in skills)
    assert set(used) <= CATEGORIES, set(used) - CATEGORIES
    assert set(used) == CATEGORIES, f"empty categories: {CATEGORIES - set(used)}"


def test_aliases_are_not_redundant_within_a_skill(skills: list[dict[str, Any]]) -> None:
    for skill in skills:
        folded = [alias.casefold() for alias in skill["aliases"]]
        assert len(folded) == len(set(folded)), skill
        assert skill["slug"] not in folded, skill
        assert skill["name"].casefold() not in folded, skill


def test_every_lookup_key_points_to_one_skill(skills: list[dict[str, Any]]) -> None:
    # A person may type a slug, a name or an alias in any case; each must resolve to a single skill.
    owners: dict[str, set[str]] = {}
    for skill in skills:
        keys = {skill["slug"], skill["name"].casefold(), *(alias.casefold() for alias in skill["aliases"])}
        for key in keys:
            owners.setdefault(key, set()).add(skill["slug"])
    clashes = {key: sorted(slugs) for key, slugs in owners.items() if len(slugs) > 1}
    assert clashes == {}


def test_no_alias_collides_with_another_slug_or_alias(skills: list[dict[str, Any]]) -> None:
    slugs = {skill["slug"] for skill in skills}
    alias_owner: dict[str, str] = {}
    for skill in skills:
        for alias in skill["aliases"]:
            key = alias.casefold()
            assert key not in slugs - {skill["slug"]}, f"{alias!r} of {skill['slug']} is another skill's slug"
            other = alias_owner.setdefault(key, skill["slug"])
            assert other == skill["slug"], f"{alias!r} is an alias of both {other} and {skill['slug']}"


@pytest.mark.parametrize(
    ("slug", "name", "aliases"),
    [
        ("python", "Python", {"py", "python3"}),
        ("csharp", "C#", {"c-sharp"}),
        ("cpp", "C++", set()),
        ("nodejs", "Node.js", {"node", "node-js"}),
        ("postgresql", "PostgreSQL", {"postgres", "psql"}),
        ("kubernetes", "Kubernetes", {"k8s"}),
        ("javascript", "JavaScript", {"js"}),
        ("typescript", "TypeScript", {"ts"}),
        ("machine-learning", "Machine learning", {"ml"}),
        ("technical-writing", "Technical writing", set()),
        ("code-review", "Code review", set()),
    ],
)
def test_well_known_skills_are_present(
    skills: list[dict[str, Any]], slug: str, name: str, aliases: set[str]
) -> None:
    by_slug = {skill["slug"]: skill for skill in skills}
    assert slug in by_slug
    assert by_slug[slug]["name"] == name
    assert aliases <= set(by_slug[slug]["aliases"])
