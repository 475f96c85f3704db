"""Built-in plugin: the WebSocket ``/ws`` that pushes a signed-in person's live messages
(notifications now; chat, typing and presence as they come) to their open pages.

The socket is authenticated like any request (the session cookie, or an ``Authorization:
Bearer`` access token) and only accepted from the site's own origin. It subscribes to the
person's live subject, ``<prefix>.live.user.<id>`` on NATS, so whatever any app instance
publishes for them (:func:`mercato.core.events.live.publish_after_commit`) reaches this one.
Each message is a JSON object with a ``type``. The client may send ``{"type": "ping"}`` and
gets ``{"type": "pong"}``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import msgspec
import structlog
from litestar import WebSocket, websocket
from litestar.di import NamedDependency
from litestar.exceptions import WebSocketDisconnect

from mercato import hookimpl
from mercato.core.site import Site

log = structlog.get_logger("mercato.live")

QUEUE_SIZE = 500
"""Messages kept for a slow socket; past that it is closed (the client reconnects and reloads)."""
NOT_SIGNED_IN = 4401
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
            if isinstance(message, dict) and message.get("type") == "ping":
                await socket.send_text('{"type":"pong"}')

    tasks = [asyncio.create_task(forward()), asyncio.create_task(listen()),
             asyncio.create_task(overflowed.wait())]
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


@hookimpl
def register_routes(site: Site) -> list[Any]:
    return [live_socket]
