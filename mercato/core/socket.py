"""Built-in plugin: the WebSocket ``/ws`` that pushes a signed-in person's live messages
(notifications now; chat, typing and presence as they come) to their open pages.

The socket is authenticated like any request (the session cookie, or an ``Authorization:
Bearer`` access token) and only accepted from the site's own origin. It subscribes to the
person's live subject, ``<prefix>.live.user.<id>`` on NATS, so whatever any app instance
publishes for them (:func:`mercato.core.events.live.publish_after_commit`) reaches this one.
Each message is a JSON object with a ``type``. The first is ``{"type": "ready"}``, once the
subscription is in place (a page then fetches what it missed while away). The client may send
``{"type": "ping"}`` and gets ``{"type": "pong"}``; other types go to the plugins'
``register_socket_handlers``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect
from sqlalchemy import ForeignKey, select
from sqlalchemy.orm import Mapped, mapped_column

from mercato import hookimpl
from mercato.core.db import Base, UTCDateTime, utcnow
from mercato.core.site import Site

log = structlog.get_logger("mercato.live")

QUEUE_SIZE = 500
"""Messages kept for a slow socket; past that it is closed (the client reconnects and reloads)."""
NOT_SIGNED_IN = 4401
HEARTBEAT_SECONDS = 60
"""How often an open socket renews its person's presence; it lapses 1.5 times that later."""


class Presence(Base):
    """Whether someone has a live page open (on any instance), and when they were last seen.
    Each open socket renews ``online_until``; closing the last one on an instance ends it (an
    instance that dies simply lets it lapse)."""

    __tablename__ = "presence"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    online_until: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


async def seen(site: Site, user_id: uuid.UUID, *, online: bool) -> None:
    """Record that ``user_id`` is here (``online``: for the next heartbeat and a half) or left."""
    now = utcnow()
    until = now + timedelta(seconds=HEARTBEAT_SECONDS * 1.5) if online else now
    async with site.db.transaction() as session:
        row = await session.get(Presence, user_id, with_for_update=True)
        if row is None:
            session.add(Presence(user_id=user_id, online_until=until, last_seen_at=now))
        else:
            row.online_until, row.last_seen_at = until, now


async def presence_of(session: Any,
                      user_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[bool, datetime | None]]:
    """``user_id`` → (online now, last seen) for each of ``user_ids``."""
    now = utcnow()
    rows = await session.scalars(select(Presence).where(Presence.user_id.in_(user_ids)))
    found = {row.user_id: (row.online_until > now, row.last_seen_at) for row in rows}
    return {user_id: found.get(user_id, (False, None)) for user_id in user_ids}


@dataclass(frozen=True, slots=True)
class SocketHandler:
    """Answers one ``type`` of message a page sends up ``/ws`` (``register_socket_handlers``)."""

    type: str
    handle: Callable[[uuid.UUID, dict[str, Any]], Awaitable[dict[str, Any] | None]]
    """``handle(user_id, message)``: a reply for this socket, or None."""

FORBIDDEN_ORIGIN = 4403
TOO_SLOW = 4408


def allowed_origin(origin: str, site: Site, host: str) -> bool:
    """The site's own origin (``[site] base_url``), or the host the request came to."""
    if not origin:
        return True  # not a browser: no cross-site risk, and the token decides
    found = urlsplit(origin)
    base = urlsplit(site.settings.site.base_url)
    return (found.scheme, found.netloc) == (base.scheme, base.netloc) or found.netloc == host


@websocket("/ws", name="live:socket")
async def live_socket(socket: WebSocket[Any, Any, Any], site: NamedDependency[Site]) -> None:
    principal = socket.scope.get("user")
    # Accepted, then closed with a code that says why, so a page's script knows not to retry.
    await socket.accept()
    if not allowed_origin(socket.headers.get("origin", ""), site, socket.headers.get("host", "")):
        await socket.close(code=FORBIDDEN_ORIGIN, reason="This socket is for the site's own pages.")
        return
    if principal is None:
        await socket.close(code=NOT_SIGNED_IN, reason="Log in first.")
        return
    live = site.events.live
    if live is None:
        await socket.close(code=1013, reason="Live updates are not available; try again soon.")
        return
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_SIZE)
    overflowed = asyncio.Event()

    async def deliver(data: bytes) -> None:
        try:
            queue.put_nowait(data)
        except asyncio.QueueFull:
            overflowed.set()

    subscription = await live.subscribe(principal.user_id, deliver)
    handlers = site.plugins.socket_handlers(site)
    open_here = site.state.setdefault("live_sockets", {})
    open_here[principal.user_id] = open_here.get(principal.user_id, 0) + 1
    await _seen_quietly(site, principal.user_id, online=True)
    if open_here[principal.user_id] == 1:
        await site.plugins.presence_changed(site, principal.user_id, True)
    await socket.send_text('{"type":"ready"}')  # subscribed: from here on nothing is missed

    async def forward() -> None:
        while True:
            data = await queue.get()
            await socket.send_text(data.decode())

    async def listen() -> None:
        while True:
            raw = await socket.receive_text()
            try:
                message = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                continue
            if not isinstance(message, dict):
                continue
            kind = message.get("type")
            if kind == "ping":
                await socket.send_text('{"type":"pong"}')
                continue
            handler = handlers.get(str(kind))
            if handler is None:
                reply: dict[str, Any] | None = {"type": "error", "message": f"Unknown message type {kind!r}."}
            else:
                try:
                    reply = await handler.handle(principal.user_id, message)
                except Exception:  # one bad message must not end the socket
                    log.exception("socket handler failed", type=kind)
                    reply = {"type": "error", "message": "That did not work; try again."}
            if reply is not None:
                await socket.send_text(msgspec.json.encode(reply).decode())

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            await _seen_quietly(site, principal.user_id, online=True)

    tasks = [asyncio.create_task(forward()), asyncio.create_task(listen()),
             asyncio.create_task(overflowed.wait()), asyncio.create_task(heartbeat())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if overflowed.is_set():
            log.warning("live socket too slow; closed", user_id=str(principal.user_id))
            with contextlib.suppress(Exception):
                await socket.close(code=TOO_SLOW, reason="Too many messages waiting; reconnect.")
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None and not isinstance(error, WebSocketDisconnect):
                log.info("live socket ended", error=repr(error))
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()
        open_here[principal.user_id] -= 1
        if not open_here[principal.user_id]:
            del open_here[principal.user_id]
            await _seen_quietly(site, principal.user_id, online=False)
            await site.plugins.presence_changed(site, principal.user_id, False)


async def _seen_quietly(site: Site, user_id: uuid.UUID, *, online: bool) -> None:
    try:
        await seen(site, user_id, online=online)
    except Exception:  # presence is a courtesy: never the reason a socket fails
        log.warning("presence not recorded", user_id=str(user_id), exc_info=True)


@hookimpl
def register_models(site: Site) -> list[Any]:
    return [Presence]


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [live_socket]
