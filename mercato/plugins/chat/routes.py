"""The chat API: conversations, messages, read receipts and blocks. Someone else's
conversation or message is a 404."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from mercato.core.accounts.routes import require_principal
from mercato.core.projects.routes import DOWNLOAD, UPLOAD_PROBLEMS, Upload
from mercato.core.site import Site

from .models import Conversation
from .service import (
    Chat,
    ConversationIn,
    ConversationOut,
    FileOut,
    MessageIn,
    MessageOut,
    MessagePage,
    ReadIn,
    file_out,
    files_of,
    message_out,
)


class ChatController(Controller):
    path = "/api/v1"
    tags = ["chat"]

    @get("/conversations", summary="Your conversations, most recent first")
    async def list_conversations(
        self, request: Request[Any, Any, Any], site: NamedDependency[Site]
    ) -> list[ConversationOut]:
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await Chat(site).list_for(session, principal.user_id)

    @post("/conversations", status_code=200, summary="Start (or find) a conversation with someone")
    async def start(
        self, request: Request[Any, Any, Any], data: JSONBody[ConversationIn], site: NamedDependency[Site]
    ) -> ConversationOut:
        """One conversation per pair of people and subject: starting it again returns it. With
        ``message``, the first message is sent too."""
        principal = require_principal(request)
        chat = Chat(site)
        if data.message:
            chat.check_body(data.message)
            await chat.check_rate(principal.user_id)
        async with site.db.transaction() as session:
            conversation = await chat.start(session, principal.user_id, data)
            if data.message:
                await chat.send(session, conversation.id, principal.user_id, data.message)
            return await chat.out(session, conversation, principal.user_id)

    @get("/conversations/{conversation_id:uuid}", summary="One of your conversations")
    async def get_conversation(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> ConversationOut:
        principal = require_principal(request)
        chat = Chat(site)
        async with site.db.reading() as session:
            member = await chat.member(session, conversation_id, principal.user_id)
            conversation = await session.get(Conversation, member.conversation_id)
            assert conversation is not None
            return await chat.out(session, conversation, principal.user_id)

    @get("/conversations/{conversation_id:uuid}/messages", summary="Messages, oldest first")
    async def messages(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
        before: FromQuery[uuid.UUID | None] = None,
        after: FromQuery[uuid.UUID | None] = None,
    ) -> MessagePage:
        """The latest 50; ``before=<id>`` for older ones; ``after=<id>`` for those that came
        after the last one you saw (a socket catching up after a reconnect)."""
        principal = require_principal(request)
        async with site.db.reading() as session:
            return await Chat(site).messages(
                session, conversation_id, principal.user_id, before=before, after=after
            )

    @post("/conversations/{conversation_id:uuid}/messages", status_code=201, summary="Send a message")
    async def send(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
        site: NamedDependency[Site],
    ) -> MessageOut:
        """Markdown, at most 5,000 characters (400 naming ``body`` past that); 30 a minute (429);
        403 when either of you blocked the other."""
        principal = require_principal(request)
        chat = Chat(site)
        chat.check_body(data.body, with_files=bool(data.files))
        await chat.check_rate(principal.user_id)
        async with site.db.transaction() as session:
            row = await chat.send(session, conversation_id, principal.user_id, data.body, data.files)
            return message_out(row, (await files_of(session, [row])).get(row.id))

    @post(
        "/conversations/{conversation_id:uuid}/files",
        status_code=201,
        summary="Upload a file to send",
        responses=UPLOAD_PROBLEMS,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[uuid.UUID],
        data: Upload,
        site: NamedDependency[Site],
    ) -> FileOut:
        """Yours alone until you send it: list its id in a message's ``files``."""
        principal = require_principal(request)
        row = await Chat(site).upload(
            conversation_id, principal.user_id, data.file.filename or "", await data.file.read()
        )
        return file_out(row)

    @get(
        "/conversations/{conversation_id:uuid}/files/{file_id:uuid}",
        summary="Download a file",
        responses={200: DOWNLOAD},
    )
    async def download(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[uuid.UUID],
        file_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
    ) -> Response[bytes]:
        principal = require_principal(request)
        return await Chat(site).download(conversation_id, file_id, principal.user_id)

    @post("/conversations/{conversation_id:uuid}/read", status_code=204, summary="Mark read (a read receipt)")
    async def read(
        self,
        request: Request[Any, Any, Any],
        conversation_id: FromPath[uuid.UUID],
        site: NamedDependency[Site],
        data: JSONBody[ReadIn | None] = None,
    ) -> None:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await Chat(site).read(
                session, conversation_id, principal.user_id, data.message_id if data else None
            )

    @patch("/messages/{message_id:uuid}", summary="Edit your message (for 15 minutes)")
    async def edit(
        self,
        request: Request[Any, Any, Any],
        message_id: FromPath[uuid.UUID],
        data: JSONBody[MessageIn],
        site: NamedDependency[Site],
    ) -> MessageOut:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            return message_out(await Chat(site).edit(session, message_id, principal.user_id, data.body))

    @delete("/messages/{message_id:uuid}", status_code=204, summary="Delete your message (for 15 minutes)")
    async def remove(
        self, request: Request[Any, Any, Any], message_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> None:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await Chat(site).edit(session, message_id, principal.user_id, None)

    @put("/users/{user_id:uuid}/block", status_code=204, summary="Block someone from messaging you")
    async def block(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> None:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await Chat(site).block(session, principal.user_id, user_id, True)

    @delete("/users/{user_id:uuid}/block", status_code=204, summary="Unblock someone")
    async def unblock(
        self, request: Request[Any, Any, Any], user_id: FromPath[uuid.UUID], site: NamedDependency[Site]
    ) -> None:
        principal = require_principal(request)
        async with site.db.transaction() as session:
            await Chat(site).block(session, principal.user_id, user_id, False)
