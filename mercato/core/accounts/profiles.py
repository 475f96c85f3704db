"""Profiles, skills and portfolios: what people show the marketplace."""

from __future__ import annotations

import functools
import tomllib
import uuid
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import msgspec
from litestar.exceptions import NotFoundException
from sqlalchemy import delete, select

from mercato.core.accounts import events, schemas
from mercato.core.accounts.models import PortfolioItem, Profile, Skill, User, UserIdentity, UserSkill
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, emit
from mercato.core.markdown import render_markdown
from mercato.core.pagination import decode_cursor, encode_cursor, newest_first
from mercato.core.reputation.models import Reputation
from mercato.core.reputation.schemas import ReputationOut

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site
    from mercato.core.storage import Storage

SKILLS_FILE = Path(__file__).with_name("skills.toml")

_zones = functools.cache(zoneinfo.available_timezones)
"""The IANA zone names, read once: listing them walks the tz database on disk."""
MAX_PORTFOLIO_ITEMS = 50
MAX_PORTFOLIO_IMAGES = 8


def load_skill_catalogue() -> list[dict[str, Any]]:
    """The canonical skills shipped with mercato."""
    with SKILLS_FILE.open("rb") as fh:
        return list(tomllib.load(fh)["skill"])


async def sync_skills(session: AsyncSession) -> int:
    """Add shipped skills the database lacks and refresh names/aliases; returns how many
    changed. Idempotent; safe when several processes start at once (last write wins with
    the same values)."""
    existing = {row.slug: row for row in (await session.execute(select(Skill))).scalars()}
    changed = 0
    for entry in load_skill_catalogue():
        row = existing.get(entry["slug"])
        values = {"name": entry["name"], "category": entry["category"],
                  "aliases": list(entry.get("aliases", []))}
        if row is None:
            session.add(Skill(slug=entry["slug"], **values))
            changed += 1
        elif (row.name, row.category, row.aliases) != (values["name"], values["category"], values["aliases"]):
            row.name, row.category, row.aliases = values["name"], values["category"], values["aliases"]
            changed += 1
    return changed


def _skill_out(skill: Skill) -> schemas.SkillOut:
    return schemas.SkillOut(slug=skill.slug, name=skill.name, category=skill.category,
                            aliases=list(skill.aliases))


def _clean_url(value: str, field: str) -> str:
    value = value.strip()
    if not value:
        return ""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise field_error(field, "Enter a full link starting with https://")
    return value


def _clean_text(value: str) -> str:
    """Drop control characters (NUL, bidi tricks stay visible as text) and trim."""
    return "".join(ch for ch in value if ch in "\n\t" or ord(ch) >= 32).strip()


class ProfileService:
    """Profiles and portfolios of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site

    @property
    def storage(self) -> Storage:
        return self.site.plugins.storage(self.site)

    # -- skills ------------------------------------------------------------------
    async def list_skills(self, session: AsyncSession, *, q: str | None, category: str | None, limit: int,
                          cursor: str | None) -> schemas.SkillPage:
        query = select(Skill).order_by(Skill.slug)
        after = decode_cursor(cursor, 1)
        if after:
            query = query.where(Skill.slug > str(after[0]))
        if category:
            query = query.where(Skill.category == category)
        rows = list((await session.execute(query)).scalars())
        if q:
            needle = q.strip().casefold()
            rows = [s for s in rows if needle in s.name.casefold() or needle in s.slug
                    or any(needle in alias.casefold() for alias in s.aliases)]
            # exact names and aliases first, so "js" finds JavaScript at the top
            rows.sort(key=lambda s: (needle not in (s.slug, s.name.casefold(), *map(str.casefold, s.aliases)),
                                     s.slug))
        page = rows[:limit]
        next_cursor = encode_cursor(page[-1].slug) if len(rows) > limit and not q else None
        return schemas.SkillPage(items=[_skill_out(s) for s in page], next_cursor=next_cursor)

    async def resolve_skills(self, session: AsyncSession, slugs: list[str], *, field: str) -> list[Skill]:
        """The skills named by ``slugs`` (slugs or aliases, any case), in order, without repeats."""
        if not slugs:
            return []
        wanted = [s.strip().casefold() for s in slugs if s.strip()]
        catalogue = list((await session.execute(select(Skill))).scalars())
        by_name: dict[str, Skill] = {}
        for skill in catalogue:
            for name in (skill.slug, skill.name.casefold(), *(a.casefold() for a in skill.aliases)):
                by_name.setdefault(name, skill)
        found: list[Skill] = []
        unknown = [w for w in wanted if w not in by_name]
        if unknown:
            raise field_error(field, f"Unknown skill: {', '.join(unknown[:5])}. Pick skills from the list "
                              "(GET /api/v1/skills).")
        for name in wanted:
            if by_name[name] not in found:
                found.append(by_name[name])
        return found

    # -- profiles ----------------------------------------------------------------
    async def profile_out(self, session: AsyncSession, user: User) -> schemas.ProfileOut:
        profile = await session.get(Profile, user.id) or Profile(user_id=user.id)
        skills = (await session.execute(
            select(Skill).join(UserSkill, UserSkill.skill_slug == Skill.slug)
            .where(UserSkill.user_id == user.id).order_by(UserSkill.position)
        )).scalars()
        rate = (schemas.Money(amount=profile.hourly_rate, currency=profile.currency or "USD")
                if profile.hourly_rate is not None else None)
        return schemas.ProfileOut(
            headline=profile.headline or "", bio=profile.bio or "",
            bio_html=str(render_markdown(profile.bio or "")),
            skills=[_skill_out(s) for s in skills], hourly_rate=rate, location=profile.location or "",
            timezone=profile.timezone or "", languages=list(profile.languages or []),
            availability=profile.availability or "available", github_url=profile.github_url or "",
            website_url=profile.website_url or "",
            avatar_url=self.storage.url(profile.avatar_key) if profile.avatar_key else None,
        )

    async def public_user(self, session: AsyncSession, user: User,
                          reputations: list[Reputation] | None = None) -> schemas.PublicUser:
        """``reputations``: the person's rows when the caller loaded many people's at once."""
        # Who administers the site is not public: it would point attackers at the accounts to phish.
        roles = sorted(user.roles - {"admin"})
        if reputations is None:
            reputations = list(await session.scalars(select(Reputation).where(Reputation.user_id == user.id)))
        return schemas.PublicUser(id=user.id, display_name=user.display_name, roles=roles,
                                  member_since=user.created_at, profile=await self.profile_out(session, user),
                                  reputation={row.role: out for row in sorted(
                                      reputations, key=lambda row: row.role, reverse=True)
                                      if (out := ReputationOut.of(row)) is not None})

    async def me(self, session: AsyncSession, user: User) -> schemas.Me:
        providers = (await session.execute(
            select(UserIdentity.provider).where(UserIdentity.user_id == user.id))).scalars()
        return schemas.Me(
            id=user.id, email=user.email, email_verified=user.email_verified, display_name=user.display_name,
            roles=sorted(user.roles), status=user.status, has_password=user.password_hash is not None,
            linked_providers=sorted(set(providers)), member_since=user.created_at,
            profile=await self.profile_out(session, user),
        )

    async def update(self, session: AsyncSession, user: User, changes: schemas.MeUpdate) -> None:
        profile = await session.get(Profile, user.id)
        if profile is None:
            profile = Profile(user_id=user.id)
            session.add(profile)
        if changes.display_name is not None:
            name = " ".join(_clean_text(changes.display_name).split())
            if not name:
                raise field_error("display_name", "Enter your name as others should see it.")
            user.display_name = name
        if changes.roles is not None:
            user.is_client, user.is_developer = "client" in changes.roles, "developer" in changes.roles
        if changes.headline is not None:
            profile.headline = " ".join(_clean_text(changes.headline).split())
        if changes.bio is not None:
            profile.bio = _clean_text(changes.bio)
        if changes.location is not None:
            profile.location = _clean_text(changes.location)
        if changes.timezone is not None:
            zone = changes.timezone.strip()
            if zone and zone not in _zones():
                raise field_error("timezone", "Pick a time zone such as Europe/Lisbon or America/New_York.")
            profile.timezone = zone
        if changes.languages is not None:
            cleaned = (_clean_text(x) for x in changes.languages)
            profile.languages = list(dict.fromkeys(x for x in cleaned if x))
        if changes.availability is not None:
            profile.availability = changes.availability
        if changes.github_url is not None:
            profile.github_url = _clean_url(changes.github_url, "github_url")
        if changes.website_url is not None:
            profile.website_url = _clean_url(changes.website_url, "website_url")
        if changes.hourly_rate is not msgspec.UNSET:
            rate = changes.hourly_rate
            profile.hourly_rate = rate.amount if rate is not None else None
            if rate is not None:
                profile.currency = rate.currency
        skill_slugs: list[str] | None = None
        if changes.skills is not None:
            skills = await self.resolve_skills(session, changes.skills, field="skills")
            await session.execute(delete(UserSkill).where(UserSkill.user_id == user.id))
            for position, skill in enumerate(skills):
                session.add(UserSkill(user_id=user.id, skill_slug=skill.slug, position=position))
            skill_slugs = [s.slug for s in skills]
        profile.updated_at = utcnow()
        if skill_slugs is None:
            skill_slugs = list((await session.execute(
                select(UserSkill.skill_slug).where(UserSkill.user_id == user.id).order_by(UserSkill.position)
            )).scalars())
        emit(session, Event.of(events.ProfileUpdated(user_id=user.id, skills=skill_slugs), actor_id=user.id))

    async def set_avatar(self, session: AsyncSession, user: User, key: str | None) -> str | None:
        """Point the profile at a new avatar; returns the old key (delete it after commit)."""
        profile = await session.get(Profile, user.id)
        if profile is None:
            profile = Profile(user_id=user.id)
            session.add(profile)
        old, profile.avatar_key = profile.avatar_key, key
        return old

    # -- portfolio ---------------------------------------------------------------
    async def portfolio_out(self, session: AsyncSession, item: PortfolioItem) -> schemas.PortfolioItemOut:
        skills = await self.resolve_skills(session, list(item.skills), field="skills") if item.skills else []
        storage = self.storage
        return schemas.PortfolioItemOut(
            id=item.id, user_id=item.user_id, title=item.title, description=item.description,
            description_html=str(render_markdown(item.description)), link=item.link,
            skills=[_skill_out(s) for s in skills], created_at=item.created_at,
            images=[schemas.PortfolioImage(key=i["key"], url=storage.url(i["key"]), width=i["width"],
                                           height=i["height"]) for i in item.images],
        )

    async def list_portfolio(self, session: AsyncSession, user_id: uuid.UUID, *, limit: int,
                             cursor: str | None) -> schemas.PortfolioPage:
        page, next_cursor = await newest_first(
            session, select(PortfolioItem).where(PortfolioItem.user_id == user_id),
            moment=PortfolioItem.created_at, row_id=PortfolioItem.id, cursor=cursor, limit=limit)
        return schemas.PortfolioPage(items=[await self.portfolio_out(session, i) for i in page],
                                     next_cursor=next_cursor)

    async def own_item(self, session: AsyncSession, user: User, item_id: uuid.UUID) -> PortfolioItem:
        """``item_id`` if ``user`` owns it; 404 otherwise (someone else's is not shown)."""
        item = await session.get(PortfolioItem, item_id)
        if item is None or item.user_id != user.id:
            raise NotFoundException("No such portfolio item.")
        return item

    async def add_item(self, session: AsyncSession, user: User,
                       body: schemas.PortfolioItemIn) -> PortfolioItem:
        count = len(list((await session.execute(
            select(PortfolioItem.id).where(PortfolioItem.user_id == user.id))).scalars()))
        if count >= MAX_PORTFOLIO_ITEMS:
            raise field_error("title", f"A portfolio holds at most {MAX_PORTFOLIO_ITEMS} items; "
                              "remove one first.")
        skills = await self.resolve_skills(session, body.skills, field="skills")
        title = " ".join(_clean_text(body.title).split())
        if not title:
            raise field_error("title", "Give the item a title.")
        item = PortfolioItem(user_id=user.id, title=title, description=_clean_text(body.description),
                             link=_clean_url(body.link, "link"), skills=[s.slug for s in skills], images=[])
        session.add(item)
        await session.flush()
        return item

    async def update_item(self, session: AsyncSession, item: PortfolioItem,
                          body: schemas.PortfolioItemUpdate) -> list[str]:
        """Apply changes; returns image keys dropped (delete them after commit)."""
        if body.title is not None:
            title = " ".join(_clean_text(body.title).split())
            if not title:
                raise field_error("title", "Give the item a title.")
            item.title = title
        if body.description is not None:
            item.description = _clean_text(body.description)
        if body.link is not None:
            item.link = _clean_url(body.link, "link")
        if body.skills is not None:
            item.skills = [s.slug for s in await self.resolve_skills(session, body.skills, field="skills")]
        dropped: list[str] = []
        if body.image_keys is not None:
            by_key = {image["key"]: image for image in item.images}
            unknown = [k for k in body.image_keys if k not in by_key]
            if unknown:
                raise field_error("image_keys", "Only images of this item can be kept.")
            dropped = [k for k in by_key if k not in body.image_keys]
            item.images = [by_key[k] for k in dict.fromkeys(body.image_keys)]
        item.updated_at = utcnow()
        return dropped

    def add_image(self, item: PortfolioItem, *, key: str, width: int, height: int) -> None:
        if len(item.images) >= MAX_PORTFOLIO_IMAGES:
            raise field_error("image", f"An item shows at most {MAX_PORTFOLIO_IMAGES} images; "
                              "remove one first.")
        item.images = [*item.images, {"key": key, "width": width, "height": height}]
        item.updated_at = utcnow()


async def withhold_if_hidden(session: AsyncSession, person: schemas.PublicUser) -> schemas.PublicUser:
    """``person`` with only the name left when moderators hid the profile."""
    profile = await session.get(Profile, person.id)
    if profile is None or profile.hidden_at is None:
        return person
    blank = msgspec.structs.replace(
        person.profile, headline="", bio="", bio_html="", skills=[], hourly_rate=None, location="",
        timezone="", languages=[], github_url="", website_url="", avatar_url=None,
    )
    return msgspec.structs.replace(person, profile=blank, reputation={}, hidden=True)
