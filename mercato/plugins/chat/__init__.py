"""chat: conversations between two people (about a project, a proposal or a contract, or
nothing in particular), with messages pushed live to both over ``/ws``, read receipts,
typing indicators, edits within 15 minutes, and blocks. Plugins refuse content with the
``validate_message`` hook. Its tables are on its own migration branch, ``chat``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from mercato import hookimpl
from mercato.core.db import utcnow
from mercato.core.moderation.subjects import ReportedItem, ReportSubject, excerpt
from mercato.core.socket import SocketHandler

from .models import Block, Conversation, Member, Message
from .service import Chat

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

PACKAGE_DIR = Path(__file__).parent


@hookimpl
def register_models(site: Site) -> list[type[Any]]:
    return [Conversation, Member, Message, Block]


@hookimpl
def register_migrations(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "migrations" / "versions"]


@hookimpl
def register_template_dirs(site: Site) -> list[Path]:
    return [PACKAGE_DIR / "templates"]


@hookimpl
def register_routes(site: Site) -> list[Any]:
    from .pages import PAGE_ROUTES
    from .routes import ChatController

    return [ChatController, *PAGE_ROUTES]


@hookimpl
def register_socket_handlers(site: Site) -> list[SocketHandler]:
    """``typing`` tells the other member you are typing; ``send`` sends a message."""
    chat = Chat(site)
    return [SocketHandler("typing", chat.typing), SocketHandler("send", chat.send_from_socket)]


@hookimpl
async def on_presence_changed(site: Site, user_id: Any, online: bool) -> None:
    """The people someone talks to see them come online and go."""
    await Chat(site).presence_changed(user_id, online)


@hookimpl
async def extra_template_vars(site: Site, request: Any, template_name: str) -> dict[str, Any]:
    """On a contract's page, its conversation: the latest messages and where to continue."""
    if request is None or template_name != "contracts/contract.html":
        return {}
    from mercato.core.accounts.middleware import principal_of

    principal = principal_of(request)
    contract_id = request.path_params.get("contract_id")
    if principal is None or contract_id is None:
        return {}
    return {"contract_conversation": await Chat(site).about(principal.user_id, "contract", contract_id)}


@hookimpl
def register_report_subjects(site: Site) -> list[ReportSubject]:
    """``message``: a chat message; hidden, it reads "Hidden by moderators" to both people."""

    async def describe(session: AsyncSession, message_id: uuid.UUID, viewer_id: uuid.UUID | None
                       ) -> ReportedItem | None:
        message = await session.get(Message, message_id)
        if message is None or message.sender_id is None or message.deleted_at is not None:
            return None
        if viewer_id is not None:
            member = await session.scalar(select(Member.id).where(
                Member.conversation_id == message.conversation_id, Member.user_id == viewer_id))
            if member is None:
                return None
        return ReportedItem(owner_id=message.sender_id, title="A chat message", excerpt=excerpt(message.body),
                            url=f"/messages/{message.conversation_id}", hidden=message.hidden_at is not None)

    async def hide(session: AsyncSession, message_id: uuid.UUID, hidden: bool) -> None:
        message = await session.get(Message, message_id)
        if message is not None:
            message.hidden_at = utcnow() if hidden else None

    return [ReportSubject(kind="message", label="a message", describe=describe, hide=hide)]
