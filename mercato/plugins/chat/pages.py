"""The chat pages: your conversations, one conversation with its messages and a form to
write (it works without JavaScript; ``chat.js`` sends over the API, shows new messages, typing
and read receipts live)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.params import FromPath
from sqlalchemy import select

from mercato.core.accounts.forms import AnyRequest, Page, form_text, redirect, to_login
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.models import User
from mercato.core.catalog.display import refused
from mercato.core.contracts.pages import problem_text
from mercato.core.projects.pages import time_ago
from mercato.core.site import Site

from .models import Conversation
from .service import MAX_MESSAGE, Chat, ConversationIn


async def _page(
    request: AnyRequest,
    site: Site,
    conversation_id: uuid.UUID | None,
    *,
    error: str = "",
    draft: str = "",
    status_code: int = 200,
) -> Any:
    principal = principal_of(request)
    assert principal is not None
    chat = Chat(site)
    async with site.db.reading() as session:
        conversations = await chat.list_for(session, principal.user_id)
        current = None
        page = None
        if conversation_id is not None:
            await chat.member(session, conversation_id, principal.user_id)
            row = await session.get(Conversation, conversation_id)
            assert row is not None
            current = await chat.out(session, row, principal.user_id)
            page = await chat.messages(session, conversation_id, principal.user_id)
        me = await session.scalar(select(User.display_name).where(User.id == principal.user_id))
    return await site.templates.page(
        request,
        "chat/messages.html",
        {
            "conversations": conversations,
            "current": current,
            "page": page,
            "me_id": principal.user_id,
            "me_name": me or "",
            "ago": time_ago,
            "error": error,
            "draft": draft,
            "max_message": MAX_MESSAGE,
        },
        status_code=status_code,
    )


@get("/messages", include_in_schema=False, name="chat:list")
async def inbox(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    if principal_of(request) is None:
        return to_login("/messages")
    return await _page(request, site, None)


@get("/messages/{conversation_id:uuid}", include_in_schema=False, name="chat:conversation")
async def conversation(
    request: AnyRequest, conversation_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/messages/{conversation_id}")
    async with site.db.transaction() as session:  # opening it reads it
        await Chat(site).read(session, conversation_id, principal.user_id, None)
    return await _page(request, site, conversation_id)


@post("/messages/{conversation_id:uuid}", include_in_schema=False, name="chat:send")
async def send(
    request: AnyRequest, conversation_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login(f"/messages/{conversation_id}")
    form = await request.form()
    body = form_text(form, "body")
    chosen = [f for f in form.getall("files", []) if isinstance(f, UploadFile) and f.filename]
    chat = Chat(site)
    try:
        chat.check_body(body, with_files=bool(chosen))
        await chat.check_rate(principal.user_id)
        uploaded = [
            (await chat.upload(conversation_id, principal.user_id, f.filename or "", await f.read())).id
            for f in chosen
        ]
        async with site.db.transaction() as session:
            await chat.send(session, conversation_id, principal.user_id, body, uploaded)
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await _page(
            request, site, conversation_id, error=problem_text(exc), draft=body, status_code=exc.status_code
        )
    return redirect(f"/messages/{conversation_id}#latest")


@post("/messages/start", include_in_schema=False, name="chat:start")
async def start(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """From a "Message …" button: find or begin the conversation, then open it."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/messages")
    form = await request.form()
    try:
        data = ConversationIn(
            user_id=uuid.UUID(form_text(form, "user_id")),
            subject_type=form_text(form, "subject_type") or None,
            subject_id=uuid.UUID(form_text(form, "subject_id")) if form_text(form, "subject_id") else None,
        )
    except ValueError:
        return await _page(request, site, None, error="That conversation cannot be started.", status_code=400)
    try:
        async with site.db.transaction() as session:
            found = await Chat(site).start(session, principal.user_id, data)
            conversation_id = found.id
    except HTTPException as exc:
        if not refused(exc):
            raise
        return await _page(request, site, None, error=problem_text(exc), status_code=exc.status_code)
    return redirect(f"/messages/{conversation_id}")


@post("/messages/{conversation_id:uuid}/block", include_in_schema=False, name="chat:block")
async def block(
    request: AnyRequest, conversation_id: FromPath[uuid.UUID], site: NamedDependency[Site]
) -> Page:
    principal = principal_of(request)
    if principal is None:
        return to_login("/messages")
    on = form_text(await request.form(), "action") != "unblock"
    chat = Chat(site)
    async with site.db.transaction() as session:
        other = await chat.other(session, conversation_id, principal.user_id)
        await chat.member(session, conversation_id, principal.user_id)
        await chat.block(session, principal.user_id, other.user_id, on)
    return redirect(f"/messages/{conversation_id}")


PAGE_ROUTES: list[Any] = [inbox, start, conversation, send, block]
