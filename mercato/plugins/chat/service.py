"""Chat: conversations between two people, messages (Markdown, rendered safe), read receipts,
typing indicators, blocks, and a ``validate_message`` hook for plugins to refuse content.

A message is committed, then pushed to both members' sockets on every app instance (the live
fan-out after commit). A socket that reconnects asks for what came after the last message it
saw (``GET …/messages?after=<id>``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import msgspec
from litestar import Response
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from mercato.core.accounts.models import User, UserStatus
from mercato.core.accounts.sessions import limiter_of
from mercato.core.db import utcnow
from mercato.core.errors import field_error
from mercato.core.events import Event, EventPayload, emit
from mercato.core.events.live import publish_after_commit
from mercato.core.files import check_file, content_disposition, store_file
from mercato.core.markdown import render_markdown
from mercato.core.ratelimit import RateLimited
from mercato.core.socket import presence_of
from mercato.core.states import InvalidTransition

from .models import Block, ChatFile, Conversation, Member, Message

DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

MAX_MESSAGE = 5_000
"""Characters in one message."""
EDIT_MINUTES = 15
"""How long the sender may edit or delete a message."""
SEND_LIMIT = 30
"""Messages a person may send per minute (across every conversation)."""
SUBJECTS = ("project", "proposal", "contract")
PAGE = 50
MAX_FILES = 10
"""Files sent with one message."""
MAX_LOOSE_FILES = 20
"""Files one person may hold uploaded but not yet sent in a conversation."""


class ConversationIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    user_id: uuid.UUID
    """Who to talk to."""
    subject_type: str | None = None
    """``project``, ``proposal`` or ``contract``: what the conversation is about."""
    subject_id: uuid.UUID | None = None
    message: Annotated[str, msgspec.Meta(max_length=MAX_MESSAGE)] | None = None
    """A first message to send at once."""


class MessageIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    body: str = ""
    """Markdown; at most 5,000 characters (may be empty when ``files`` are sent)."""
    files: Annotated[list[uuid.UUID], msgspec.Meta(max_length=MAX_FILES)] = []
    """Files uploaded first with ``POST /api/v1/conversations/{id}/files``."""


class ReadIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message_id: uuid.UUID | None = None
    """Read up to this message (default: all of them)."""


class PersonOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    display_name: str
    online: bool = False
    """Has a page of the site open now."""
    last_seen_at: datetime | None = None


class MessageSent(EventPayload, frozen=True):
    """A chat message was sent; ``recipient_online`` says whether they had the site open."""

    event_type: ClassVar[str] = "message.sent"
    message_id: uuid.UUID
    conversation_id: uuid.UUID
    sender_id: uuid.UUID
    recipient_id: uuid.UUID
    recipient_online: bool
    preview: str


class FileOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    url: str
    """Where the conversation's two people download it."""


class MessageOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    conversation_id: uuid.UUID
    sender_id: uuid.UUID | None
    body: str
    """Markdown as written; empty when deleted."""
    html: str
    """The body rendered and sanitised (links open safely)."""
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    files: list[FileOut] = []
    hidden: bool = False
    """Hidden by moderators: the body and files are withheld from everyone."""


class MessagePage(msgspec.Struct, kw_only=True):
    items: list[MessageOut]
    """Oldest first."""
    has_more: bool
    """Older messages exist (ask with ``before=<the first id>``)."""


class ConversationOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    with_user: PersonOut
    subject_type: str
    subject_id: uuid.UUID | None
    last_message_at: datetime | None
    last_message: MessageOut | None
    unread: int
    other_read_at: datetime | None
    """Until when the other person has read (read receipts)."""
    blocked: bool
    """Either of you blocked the other: no more messages."""


def file_out(row: ChatFile) -> FileOut:
    return FileOut(
        id=row.id,
        filename=row.filename,
        content_type=row.content_type,
        size=row.size,
        url=f"/api/v1/conversations/{row.conversation_id}/files/{row.id}",
    )


def message_out(row: Message, files: list[ChatFile] | None = None) -> MessageOut:
    deleted = row.deleted_at is not None
    withheld = deleted or row.hidden_at is not None
    return MessageOut(
        id=row.id,
        conversation_id=row.conversation_id,
        sender_id=row.sender_id,
        body="" if withheld else row.body,
        html="" if withheld or not row.body else str(render_markdown(row.body)),
        created_at=row.created_at,
        edited_at=row.edited_at,
        deleted=deleted,
        files=[] if withheld else [file_out(f) for f in files or []],
        hidden=row.hidden_at is not None,
    )


async def files_of(session: AsyncSession, rows: list[Message]) -> dict[uuid.UUID, list[ChatFile]]:
    found: dict[uuid.UUID, list[ChatFile]] = {}
    if rows:
        for row in await session.scalars(
            select(ChatFile)
            .where(ChatFile.message_id.in_([r.id for r in rows]))
            .order_by(ChatFile.created_at)
        ):
            assert row.message_id is not None
            found.setdefault(row.message_id, []).append(row)
    return found


class Chat:
    def __init__(self, site: Site) -> None:
        self.site = site

    # -- who may talk ------------------------------------------------------------------------
    async def member(self, session: AsyncSession, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Member:
        """``user_id``'s membership of the conversation; 404 for anyone else."""
        found = await session.scalar(
            select(Member).where(Member.conversation_id == conversation_id, Member.user_id == user_id)
        )
        if found is None:
            raise NotFoundException("No such conversation.")
        return found

    async def other(self, session: AsyncSession, conversation_id: uuid.UUID, user_id: uuid.UUID) -> Member:
        found = await session.scalar(
            select(Member).where(Member.conversation_id == conversation_id, Member.user_id != user_id)
        )
        if found is None:
            raise NotFoundException("No such conversation.")
        return found

    async def blocked(self, session: AsyncSession, a: uuid.UUID, b: uuid.UUID) -> bool:
        return (
            await session.scalar(
                select(Block.id)
                .where(
                    or_(
                        and_(Block.blocker_id == a, Block.blocked_id == b),
                        and_(Block.blocker_id == b, Block.blocked_id == a),
                    )
                )
                .limit(1)
            )
        ) is not None

    # -- conversations -----------------------------------------------------------------------
    async def start(self, session: AsyncSession, user_id: uuid.UUID, data: ConversationIn) -> Conversation:
        """Find or begin the conversation with ``data.user_id`` about the subject."""
        if data.user_id == user_id:
            raise field_error("user_id", "Pick someone else: this is you.")
        other = await session.get(User, data.user_id)
        if other is None or other.status != UserStatus.ACTIVE:
            raise field_error("user_id", "No such person.")
        subject_type = data.subject_type or ""
        if subject_type and subject_type not in SUBJECTS:
            raise field_error("subject_type", f"Use one of {', '.join(SUBJECTS)}, or leave it out.")
        if bool(subject_type) != (data.subject_id is not None):
            raise field_error("subject_id", "Give both subject_type and subject_id, or neither.")
        if await self.blocked(session, user_id, data.user_id):
            raise PermissionDeniedException("You cannot message this person.")
        low, high = sorted([str(user_id), str(data.user_id)])
        key = f"{low}:{high}:{subject_type}:{data.subject_id or ''}"
        found = await session.scalar(select(Conversation).where(Conversation.key == key))
        if found is None:
            found = Conversation(
                id=uuid.uuid4(), key=key, subject_type=subject_type, subject_id=data.subject_id
            )
            session.add(found)
            await session.flush()
            session.add_all(
                [
                    Member(id=uuid.uuid4(), conversation_id=found.id, user_id=user_id),
                    Member(id=uuid.uuid4(), conversation_id=found.id, user_id=data.user_id),
                ]
            )
            await session.flush()
        return found

    async def list_for(self, session: AsyncSession, user_id: uuid.UUID) -> list[ConversationOut]:
        ids = select(Member.conversation_id).where(Member.user_id == user_id)
        rows = list(
            await session.scalars(
                select(Conversation)
                .where(Conversation.id.in_(ids))
                .order_by(Conversation.last_message_at.desc().nulls_last(), Conversation.created_at.desc())
                .limit(200)
            )
        )
        return await self.outs(session, rows, user_id)

    async def out(
        self, session: AsyncSession, conversation: Conversation, user_id: uuid.UUID
    ) -> ConversationOut:
        return (await self.outs(session, [conversation], user_id))[0]

    async def outs(
        self, session: AsyncSession, conversations: list[Conversation], user_id: uuid.UUID
    ) -> list[ConversationOut]:
        """``conversations`` as ``user_id`` sees them, in a fixed number of queries (404 if they
        are not in one)."""
        if not conversations:
            return []
        ids = [c.id for c in conversations]
        members = list(await session.scalars(select(Member).where(Member.conversation_id.in_(ids))))
        mine = {m.conversation_id: m for m in members if m.user_id == user_id}
        others = {m.conversation_id: m for m in members if m.user_id != user_id}
        if any(i not in mine or i not in others for i in ids):
            raise NotFoundException("No such conversation.")
        other_ids = list({m.user_id for m in others.values()})
        names = dict(
            (await session.execute(select(User.id, User.display_name).where(User.id.in_(other_ids)))).all()
        )
        presence = await presence_of(session, other_ids)
        ranked = (
            select(
                Message,
                func.row_number()
                .over(
                    partition_by=Message.conversation_id,
                    order_by=(Message.created_at.desc(), Message.id.desc()),
                )
                .label("rank"),
            )
            .where(Message.conversation_id.in_(ids))
            .subquery()
        )
        latest = aliased(Message, ranked)
        last = {m.conversation_id: m for m in await session.scalars(select(latest).where(ranked.c.rank == 1))}
        me = aliased(Member)
        unread = dict(
            (
                await session.execute(
                    select(Message.conversation_id, func.count())
                    .join(me, and_(me.conversation_id == Message.conversation_id, me.user_id == user_id))
                    .where(
                        Message.conversation_id.in_(ids),
                        Message.sender_id != user_id,
                        Message.deleted_at.is_(None),
                        or_(me.last_read_at.is_(None), Message.created_at > me.last_read_at),
                    )
                    .group_by(Message.conversation_id)
                )
            ).all()
        )
        blocked = set(
            await session.scalars(select(Block.blocked_id).where(Block.blocker_id == user_id))
        ) | set(await session.scalars(select(Block.blocker_id).where(Block.blocked_id == user_id)))
        out = []
        for conversation in conversations:
            other = others[conversation.id]
            online, last_seen = presence[other.user_id]
            message = last.get(conversation.id)
            out.append(
                ConversationOut(
                    id=conversation.id,
                    with_user=PersonOut(
                        id=other.user_id,
                        display_name=names.get(other.user_id, "Deleted user"),
                        online=online,
                        last_seen_at=last_seen,
                    ),
                    subject_type=conversation.subject_type,
                    subject_id=conversation.subject_id,
                    last_message_at=conversation.last_message_at,
                    last_message=message_out(message) if message else None,
                    unread=int(unread.get(conversation.id, 0)),
                    other_read_at=other.last_read_at,
                    blocked=other.user_id in blocked,
                )
            )
        return out

    # -- messages -------------------------------------------------------------------------------
    async def messages(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        before: uuid.UUID | None = None,
        after: uuid.UUID | None = None,
    ) -> MessagePage:
        """A page of messages, oldest first: the latest, those ``before`` one (scrolling back) or
        those ``after`` one (catching up after a reconnect)."""
        await self.member(session, conversation_id, user_id)
        query = select(Message).where(Message.conversation_id == conversation_id)
        if after is not None:
            anchor = await self._anchor(session, conversation_id, after)
            rows = list(
                await session.scalars(
                    query.where(
                        or_(
                            Message.created_at > anchor.created_at,
                            and_(Message.created_at == anchor.created_at, Message.id > anchor.id),
                        )
                    )
                    .order_by(Message.created_at, Message.id)
                    .limit(PAGE + 1)
                )
            )
            files = await files_of(session, rows[:PAGE])
            return MessagePage(items=[message_out(r, files.get(r.id)) for r in rows[:PAGE]], has_more=False)
        if before is not None:
            anchor = await self._anchor(session, conversation_id, before)
            query = query.where(
                or_(
                    Message.created_at < anchor.created_at,
                    and_(Message.created_at == anchor.created_at, Message.id < anchor.id),
                )
            )
        rows = list(
            await session.scalars(
                query.order_by(Message.created_at.desc(), Message.id.desc()).limit(PAGE + 1)
            )
        )
        shown = list(reversed(rows[:PAGE]))
        files = await files_of(session, shown)
        return MessagePage(items=[message_out(r, files.get(r.id)) for r in shown], has_more=len(rows) > PAGE)

    async def _anchor(
        self, session: AsyncSession, conversation_id: uuid.UUID, message_id: uuid.UUID
    ) -> Message:
        anchor = await session.get(Message, message_id)
        if anchor is None or anchor.conversation_id != conversation_id:
            raise field_error("after", "No such message in this conversation.")
        return anchor

    async def check_rate(self, user_id: uuid.UUID) -> None:
        """429 past ``SEND_LIMIT`` messages a minute (call before the transaction)."""
        decision = await limiter_of(self.site).hit(
            "chat-send", str(user_id), limit=SEND_LIMIT, window_seconds=60
        )
        if not decision.allowed:
            raise RateLimited(decision.retry_after, message="You are sending messages very fast.")

    def check_body(self, body: str, *, with_files: bool = False) -> str:
        text = body.strip()
        if not text and not with_files:
            raise field_error("body", "Write something first.")
        if len(text) > MAX_MESSAGE:
            raise field_error(
                "body",
                f"A message holds at most {MAX_MESSAGE:,} characters; this one has "
                f"{len(text):,}. Split it, or attach a file.",
            )
        return text

    async def send(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        body: str,
        files: Sequence[uuid.UUID] = (),
    ) -> Message:
        """Send a message (and the files uploaded for it, which only its sender had until now)."""
        text = self.check_body(body, with_files=bool(files))
        me = await self.member(session, conversation_id, user_id)
        other = await self.other(session, conversation_id, user_id)
        if await self.blocked(session, user_id, other.user_id):
            raise PermissionDeniedException("You cannot message this person.")
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        for problem in self.site.plugins.validate_message(
            self.site, sender_id=user_id, conversation_id=conversation_id, body=text
        ):
            raise field_error("body", problem)
        now = utcnow()
        row = Message(
            id=uuid.uuid4(), conversation_id=conversation_id, sender_id=user_id, body=text, created_at=now
        )
        session.add(row)
        conversation.last_message_at = now
        me.last_read_at = now
        await session.flush()
        sent_files = await self._hand_over(session, conversation_id, user_id, files, row)
        self._push(
            session, [user_id, other.user_id], {"type": "message", "message": message_out(row, sent_files)}
        )
        online = (await presence_of(session, [other.user_id]))[other.user_id][0]
        emit(
            session,
            Event.of(
                MessageSent(
                    message_id=row.id,
                    conversation_id=conversation_id,
                    sender_id=user_id,
                    recipient_id=other.user_id,
                    recipient_online=online,
                    preview=text[:140],
                ),
                actor_id=user_id,
            ),
        )
        return row

    async def _hand_over(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        file_ids: Sequence[uuid.UUID],
        message: Message,
    ) -> list[ChatFile]:
        wanted = list(dict.fromkeys(file_ids))
        if not wanted:
            return []
        if len(wanted) > MAX_FILES:
            raise field_error("files", f"Send at most {MAX_FILES} files with one message.")
        rows = list(
            await session.scalars(
                select(ChatFile)
                .where(
                    ChatFile.id.in_(wanted),
                    ChatFile.conversation_id == conversation_id,
                    ChatFile.uploader_id == user_id,
                    ChatFile.message_id.is_(None),
                )
                .with_for_update()
            )
        )
        if len(rows) != len(wanted):
            raise field_error(
                "files",
                "A file is not one you uploaded to this conversation, or it was sent "
                "already; upload it again.",
            )
        for row in rows:
            row.message_id = message.id
        return rows

    async def upload(
        self, conversation_id: uuid.UUID, user_id: uuid.UUID, filename: str, data: bytes
    ) -> ChatFile:
        """Check and store a file for a message to come (400 naming ``file`` when refused)."""
        async with self.site.db.reading() as session:
            await self.member(session, conversation_id, user_id)
            await self._room(session, conversation_id, user_id)
        checked = await check_file(
            data, filename, field="file", max_bytes=self.site.settings.uploads.max_attachment_bytes
        )
        storage = self.site.plugins.storage(self.site)
        stored = await store_file(storage, checked, folder="attachments")
        try:
            async with self.site.db.transaction() as session:
                await self._room(session, conversation_id, user_id)
                row = ChatFile(
                    id=uuid.uuid4(),
                    conversation_id=conversation_id,
                    uploader_id=user_id,
                    filename=stored.filename,
                    content_type=stored.content_type,
                    size=stored.size,
                    storage_key=stored.key,
                )
                session.add(row)
                await session.flush()
                session.expunge(row)
                return row
        except BaseException:
            with contextlib.suppress(Exception):
                await storage.delete(stored.key)
            raise

    @staticmethod
    async def _room(session: AsyncSession, conversation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        loose = await session.scalar(
            select(func.count()).where(
                ChatFile.conversation_id == conversation_id,
                ChatFile.uploader_id == user_id,
                ChatFile.message_id.is_(None),
            )
        )
        if (loose or 0) >= MAX_LOOSE_FILES:
            raise field_error(
                "file", f"You have {MAX_LOOSE_FILES} files waiting to be sent here; send them first."
            )

    async def download(
        self, conversation_id: uuid.UUID, file_id: uuid.UUID, user_id: uuid.UUID
    ) -> Response[bytes]:
        """A file of the conversation for one of its two people (one not yet sent: its uploader only)."""
        async with self.site.db.reading() as session:
            await self.member(session, conversation_id, user_id)
            row = await session.get(ChatFile, file_id)
            if (
                row is None
                or row.conversation_id != conversation_id
                or (row.message_id is None and row.uploader_id != user_id)
            ):
                raise NotFoundException("No such file.")
            key, filename, content_type = row.storage_key, row.filename, row.content_type
        try:
            data = await self.site.plugins.storage(self.site).load(key)
        except FileNotFoundError:
            raise NotFoundException("This file is missing from storage.") from None
        return Response(
            data,
            media_type=content_type,
            headers={**DOWNLOAD_HEADERS, "Content-Disposition": content_disposition(filename)},
        )

    async def edit(
        self, session: AsyncSession, message_id: uuid.UUID, user_id: uuid.UUID, body: str | None
    ) -> Message:
        """Change (``body``) or delete (None) one's own message within ``EDIT_MINUTES``."""
        row = await session.get(Message, message_id)
        if row is None:
            raise NotFoundException("No such message.")
        other = await self.other(session, row.conversation_id, user_id)
        await self.member(session, row.conversation_id, user_id)
        if row.sender_id != user_id:
            raise PermissionDeniedException("Only its sender changes a message.")
        if row.deleted_at is not None:
            raise InvalidTransition("This message is deleted.")
        if utcnow() - row.created_at > timedelta(minutes=EDIT_MINUTES):
            raise InvalidTransition(f"Messages can be changed for {EDIT_MINUTES} minutes after sending.")
        if body is None:
            row.deleted_at = utcnow()
        else:
            row.body = self.check_body(body)
            for problem in self.site.plugins.validate_message(
                self.site, sender_id=user_id, conversation_id=row.conversation_id, body=row.body
            ):
                raise field_error("body", problem)
            row.edited_at = utcnow()
        await session.flush()
        self._push(
            session,
            [user_id, other.user_id],
            {
                "type": "message_changed",
                "message": message_out(row, (await files_of(session, [row])).get(row.id)),
            },
        )
        return row

    async def read(
        self,
        session: AsyncSession,
        conversation_id: uuid.UUID,
        user_id: uuid.UUID,
        message_id: uuid.UUID | None,
    ) -> datetime:
        me = await self.member(session, conversation_id, user_id)
        other = await self.other(session, conversation_id, user_id)
        moment = utcnow()
        if message_id is not None:
            moment = (await self._anchor(session, conversation_id, message_id)).created_at
        if me.last_read_at is None or moment > me.last_read_at:
            me.last_read_at = moment
            self._push(
                session,
                [other.user_id, user_id],
                {
                    "type": "read",
                    "conversation_id": str(conversation_id),
                    "user_id": str(user_id),
                    "read_at": moment.isoformat(),
                },
            )
        return me.last_read_at

    async def block(self, session: AsyncSession, user_id: uuid.UUID, other_id: uuid.UUID, on: bool) -> None:
        if other_id == user_id:
            raise field_error("user_id", "You cannot block yourself.")
        if await session.get(User, other_id) is None:
            raise NotFoundException("No such person.")
        found = await session.scalar(
            select(Block).where(Block.blocker_id == user_id, Block.blocked_id == other_id)
        )
        if on and found is None:
            session.add(Block(id=uuid.uuid4(), blocker_id=user_id, blocked_id=other_id))
        elif not on and found is not None:
            await session.delete(found)

    async def typing(self, user_id: uuid.UUID, message: dict[str, Any]) -> dict[str, Any] | None:
        """A socket's ``{"type": "typing", "conversation_id"}``: tell the other member."""
        try:
            conversation_id = uuid.UUID(str(message.get("conversation_id")))
        except ValueError:
            return {"type": "error", "message": "typing needs a conversation_id"}
        async with self.site.db.reading() as session:
            try:
                await self.member(session, conversation_id, user_id)
                other_id = (await self.other(session, conversation_id, user_id)).user_id
            except NotFoundException:
                return {"type": "error", "message": "No such conversation."}
        live = self.site.events.live
        if live is not None:
            await live.publish(
                other_id,
                {"type": "typing", "conversation_id": str(conversation_id), "user_id": str(user_id)},
            )
        return None

    async def send_from_socket(self, user_id: uuid.UUID, message: dict[str, Any]) -> dict[str, Any]:
        """A socket's ``{"type": "send", "conversation_id", "body", "ref"?}``: the same checks
        as over HTTP; the answer echoes ``ref`` so the page can match it to what it sent."""
        ref = message.get("ref")
        try:
            conversation_id = uuid.UUID(str(message.get("conversation_id")))
            body = message.get("body")
            if not isinstance(body, str):
                raise field_error("body", "Write something first.")
            self.check_body(body)
            await self.check_rate(user_id)
            async with self.site.db.transaction() as session:
                row = await self.send(session, conversation_id, user_id, body)
                sent = message_out(row)
        except HTTPException as exc:  # before ValueError: Litestar's exceptions are ValueErrors too
            return {"type": "error", "ref": ref, "status": exc.status_code, "message": str(exc.detail)}
        except ValueError:
            return {"type": "error", "ref": ref, "status": 400, "message": "send needs a conversation_id"}
        return {"type": "sent", "ref": ref, "message": msgspec.to_builtins(sent)}

    async def about(
        self, user_id: uuid.UUID, subject_type: str, subject_id: uuid.UUID
    ) -> dict[str, Any] | None:
        """``user_id``'s conversation about a subject, with its latest messages (None: none yet)."""
        async with self.site.db.reading() as session:
            mine = select(Member.conversation_id).where(Member.user_id == user_id)
            conversation = await session.scalar(
                select(Conversation)
                .where(
                    Conversation.id.in_(mine),
                    Conversation.subject_type == subject_type,
                    Conversation.subject_id == subject_id,
                )
                .limit(1)
            )
            if conversation is None:
                return None
            out = await self.out(session, conversation, user_id)
            page = await self.messages(session, conversation.id, user_id)
        return {"conversation": out, "messages": page.items[-5:]}

    async def presence_changed(self, user_id: uuid.UUID, online: bool) -> None:
        """Tell everyone ``user_id`` talks to that they came or went."""
        live = self.site.events.live
        if live is None:
            return
        async with self.site.db.reading() as session:
            mine = select(Member.conversation_id).where(Member.user_id == user_id)
            partners = set(
                await session.scalars(
                    select(Member.user_id).where(Member.conversation_id.in_(mine), Member.user_id != user_id)
                )
            )
        message = {
            "type": "presence",
            "user_id": str(user_id),
            "online": online,
            "last_seen_at": utcnow().isoformat(),
        }
        for partner in partners:
            await live.publish(partner, message)

    @staticmethod
    def _push(session: AsyncSession, users: list[uuid.UUID], message: dict[str, Any]) -> None:
        for user in dict.fromkeys(users):
            publish_after_commit(session, user, message)
