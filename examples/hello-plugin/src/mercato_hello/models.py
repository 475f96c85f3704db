"""The plugin's tables. Prefix table names with the plugin id so they never collide."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Timestamps, UUIDPrimaryKey


class Greeting(UUIDPrimaryKey, Timestamps, Base):
    """A greeting someone sent."""

    __tablename__ = "hello_greetings"

    name: Mapped[str] = mapped_column(String(80))


class Reply(UUIDPrimaryKey, Timestamps, Base):
    """The answer the ``hello-replies`` event handler writes for each greeting."""

    __tablename__ = "hello_replies"

    greeting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("hello_greetings.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(String(200))
