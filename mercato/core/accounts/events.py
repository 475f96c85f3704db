"""Events the accounts domain emits (subjects ``<prefix>.user.*``)."""

from __future__ import annotations

import uuid
from typing import ClassVar

from mercato.core.events import EventPayload


class UserRegistered(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.registered"
    user_id: uuid.UUID
    roles: list[str]
    method: str
    """``password`` or the provider id that created the account."""


class UserVerified(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.verified"
    user_id: uuid.UUID


class UserEmailChanged(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.email_changed"
    user_id: uuid.UUID


class UserPasswordChanged(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.password_changed"
    user_id: uuid.UUID


class UserSuspended(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.suspended"
    user_id: uuid.UUID
    reason: str


class UserReinstated(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.reinstated"
    user_id: uuid.UUID


class UserDeleted(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.deleted"
    user_id: uuid.UUID


class ProfileUpdated(EventPayload, frozen=True):
    event_type: ClassVar[str] = "user.profile_updated"
    user_id: uuid.UUID
    skills: list[str]
