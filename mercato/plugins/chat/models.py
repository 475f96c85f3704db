"""Conversations between two people, their messages, and blocks."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, UTCDateTime, UUIDPrimaryKey, utcnow


class Conversation(UUIDPrimaryKey, Base):
    """Two people talking, optionally about a project, a proposal or a contract. One per pair
    and subject (``key``), so starting it again finds the same one."""

    __tablename__ = "conversations"

    key: Mapped[str] = mapped_column(String(200), unique=True)
    subject_type: Mapped[str] = mapped_column(String(20), default="")
    """``project``, ``proposal``, ``contract`` or empty."""
    subject_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Member(UUIDPrimaryKey, Base):
    __tablename__ = "conversation_members"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id"),)

    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    last_read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Messages up to this moment are read (the other side sees a read receipt)."""


class Message(UUIDPrimaryKey, Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_conversation_id_created_at", "conversation_id", "created_at"),)

    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    sender_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Text)
    """Markdown as written (empty once deleted)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    """Set while moderators hide it: everyone sees "Hidden by moderators" instead."""


class Block(UUIDPrimaryKey, Base):
    """``blocker_id`` does not want messages from ``blocked_id`` (and cannot send them either)."""

    __tablename__ = "chat_blocks"
    __table_args__ = (UniqueConstraint("blocker_id", "blocked_id"),)

    blocker_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    blocked_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ChatFile(UUIDPrimaryKey, Base):
    """A file sent in a conversation: uploaded first (only its uploader sees it), then handed
    over with a message."""

    __tablename__ = "chat_files"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), default=None, index=True
    )
    uploader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
