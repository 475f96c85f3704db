"""The accounts API's request and response bodies (msgspec Structs)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from mercato.core.reputation.schemas import ReputationOut

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, description="An e-mail address.")]
Password = Annotated[str, msgspec.Meta(max_length=1024, description="Never logged or echoed.")]
Token = Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
RoleName = Literal["client", "developer"]
Availability = Literal["available", "limited", "unavailable"]
Url = Annotated[str, msgspec.Meta(max_length=300, description="An http(s) URL, or empty.")]
SkillSlug = Annotated[str, msgspec.Meta(max_length=64)]


class RegisterBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Password
    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1, max_length=2)]


class LoginBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Password


class TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    """Seconds until the access token expires."""


class RefreshBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Token


class LogoutBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    refresh_token: Token | None = None
    """Without a Bearer token, the refresh token names the session to end."""


class TokenBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Token


class PasswordResetRequestBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    email: Email


class PasswordResetConfirmBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    token: Token
    new_password: Password


class ChangePasswordBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    current_password: Password
    new_password: Password


class ChangeEmailBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    new_email: Email
    password: Password | None = None
    """Required when the account has a password."""


class DeleteAccountBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    password: Password | None = None
    """Required when the account has a password."""


class Message(msgspec.Struct, kw_only=True):
    message: str


class ProviderInfo(msgspec.Struct, kw_only=True):
    id: str
    label: str
    login_url: str
    """Open in a browser to sign in with this provider."""


class ProvidersResponse(msgspec.Struct, kw_only=True):
    password: bool
    """Whether e-mail + password sign-in is offered."""
    providers: list[ProviderInfo]


class SkillOut(msgspec.Struct, kw_only=True):
    slug: str
    name: str
    category: str
    aliases: list[str]


class SkillPage(msgspec.Struct, kw_only=True):
    items: list[SkillOut]
    next_cursor: str | None


class Money(msgspec.Struct, kw_only=True):
    amount: int
    """Minor units (cents)."""
    currency: str


class ProfileOut(msgspec.Struct, kw_only=True):
    headline: str
    bio: str
    """Markdown as written."""
    bio_html: str
    """``bio`` rendered and sanitised."""
    skills: list[SkillOut]
    hourly_rate: Money | None
    location: str
    timezone: str
    languages: list[str]
    availability: str
    github_url: str
    website_url: str
    avatar_url: str | None


class PublicUser(msgspec.Struct, kw_only=True, tag_field="kind", tag="user"):
    """What anyone may see of a person."""

    id: uuid.UUID
    display_name: str
    roles: list[str]
    member_since: datetime
    profile: ProfileOut
    reputation: dict[str, ReputationOut] = msgspec.field(default_factory=dict)
    """Their figures by the role they were rated in (``developer``, ``client``); a role
    appears once they have a contract in it."""
    hidden: bool = False
    """Moderators hid this profile: only the name is shown."""


class Me(msgspec.Struct, kw_only=True):
    """The signed-in person, private fields included."""

    id: uuid.UUID
    email: str
    email_verified: bool
    display_name: str
    roles: list[str]
    status: str
    has_password: bool
    linked_providers: list[str]
    member_since: datetime
    profile: ProfileOut


class MoneyIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    amount: Annotated[int, msgspec.Meta(ge=0, le=100_000_00)]
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] = "USD"


class MeUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """Fields to change; absent fields stay as they are."""

    display_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    roles: Annotated[list[RoleName], msgspec.Meta(min_length=1, max_length=2)] | None = None
    headline: Annotated[str, msgspec.Meta(max_length=120)] | None = None
    bio: Annotated[str, msgspec.Meta(max_length=10_000)] | None = None
    skills: Annotated[list[SkillSlug], msgspec.Meta(max_length=30)] | None = None
    hourly_rate: MoneyIn | msgspec.UnsetType | None = msgspec.UNSET
    location: Annotated[str, msgspec.Meta(max_length=120)] | None = None
    timezone: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    languages: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=40)]],
                         msgspec.Meta(max_length=10)] | None = None
    availability: Availability | None = None
    github_url: Url | None = None
    website_url: Url | None = None


class PortfolioImage(msgspec.Struct, kw_only=True):
    key: str
    url: str
    width: int
    height: int


class PortfolioItemOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    user_id: uuid.UUID
    title: str
    description: str
    description_html: str
    link: str
    skills: list[SkillOut]
    images: list[PortfolioImage]
    created_at: datetime


class PortfolioItemIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
    description: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    link: Url = ""
    skills: Annotated[list[SkillSlug], msgspec.Meta(max_length=15)] = msgspec.field(default_factory=list)


class PortfolioItemUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=120)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=5000)] | None = None
    link: Url | None = None
    skills: Annotated[list[SkillSlug], msgspec.Meta(max_length=15)] | None = None
    image_keys: list[str] | None = None
    """Keep only these images, in this order (upload new ones with ``POST …/images``)."""


class PortfolioPage(msgspec.Struct, kw_only=True):
    items: list[PortfolioItemOut]
    next_cursor: str | None


class SuspendBody(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
