"""Tables of the accounts domain: people, their sessions and tokens, profiles, skills and
portfolios."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UTCDateTime, UUIDPrimaryKey, utcnow


class Role(StrEnum):
    CLIENT = "client"
    DEVELOPER = "developer"
    ADMIN = "admin"


class UserStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    """Personal data removed; the row stays so marketplace records keep their party."""


class User(UUIDPrimaryKey, Timestamps, Base):
    """A person. One account may be a client and a developer at once."""

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320))
    """As the person typed it (shown back to them)."""
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    """``email`` case-folded: the unique key, so ``Ada@X.com`` and ``ada@x.com`` are one account."""
    display_name: Mapped[str] = mapped_column(String(100))
    is_client: Mapped[bool] = mapped_column(Boolean, default=False)
    is_developer: Mapped[bool] = mapped_column(Boolean, default=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=UserStatus.ACTIVE, index=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    """argon2id PHC string; ``None`` for accounts that sign in only through a provider."""
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    suspended_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    @property
    def roles(self) -> frozenset[str]:
        roles = set()
        if self.is_client:
            roles.add(Role.CLIENT.value)
        if self.is_developer:
            roles.add(Role.DEVELOPER.value)
        if self.is_admin:
            roles.add(Role.ADMIN.value)
        return frozenset(roles)

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_active(self) -> bool:
        return self.status == UserStatus.ACTIVE


class Profile(Timestamps, Base):
    """What a person shows the marketplace about themselves."""

    __tablename__ = "profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    headline: Mapped[str] = mapped_column(String(120), default="")
    bio: Mapped[str] = mapped_column(Text, default="")
    """Markdown; rendered sanitised."""
    hourly_rate: Mapped[int | None] = mapped_column(Integer, default=None)
    """Minor units (cents) of ``currency``."""
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    location: Mapped[str] = mapped_column(String(120), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="")
    """An IANA zone name, e.g. ``Europe/Lisbon``."""
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    availability: Mapped[str] = mapped_column(String(20), default="available")
    github_url: Mapped[str] = mapped_column(String(300), default="")
    website_url: Mapped[str] = mapped_column(String(300), default="")
    avatar_key: Mapped[str | None] = mapped_column(String(200), default=None)
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Set while moderators hide the profile: others see only the name."""


class Skill(Base):
    """A canonical skill of the taxonomy (seeded from ``skills.toml``)."""

    __tablename__ = "skills"

    slug: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    category: Mapped[str] = mapped_column(String(40), index=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)


class UserSkill(Base):
    """A skill a person lists, in their order."""

    __tablename__ = "user_skills"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    skill_slug: Mapped[str] = mapped_column(ForeignKey("skills.slug"), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class PortfolioItem(UUIDPrimaryKey, Timestamps, Base):
    """A piece of past work a person shows."""

    __tablename__ = "portfolio_items"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(300), default="")
    skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Skill slugs."""
    images: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """``[{"key", "width", "height"}]`` in display order; the files live in storage."""


class UserIdentity(UUIDPrimaryKey, Base):
    """An external log-in (GitHub, Google, an OIDC provider) linked to a person."""

    __tablename__ = "user_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SessionKind(StrEnum):
    BROWSER = "browser"
    API = "api"


class AuthSession(UUIDPrimaryKey, Base):
    """One signed-in device: a browser cookie or an API refresh-token family.

    Revoking it (log-out, password change, suspension, a reused refresh token) ends every
    token of the family at once on every app instance (see ``sessions.py``).
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (Index("ix_auth_sessions_revoked_at", "revoked_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    authenticated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    """When the person last proved who they are (password or provider) in this session."""
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(40), default=None)
    user_agent: Mapped[str] = mapped_column(String(255), default="")


class RefreshToken(UUIDPrimaryKey, Base):
    """A refresh token of an API session, stored as its hash. Used once, then replaced."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    CHANGE_EMAIL = "change_email"


class AccountToken(UUIDPrimaryKey, Base):
    """A single-use, expiring token mailed to a person (verification, password reset)."""

    __tablename__ = "account_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    """The address the link was sent to (the new one when changing e-mail)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


ACCOUNT_MODELS: list[type[Base]] = [
    User, Profile, Skill, UserSkill, PortfolioItem, UserIdentity, AuthSession, RefreshToken, AccountToken,
]
