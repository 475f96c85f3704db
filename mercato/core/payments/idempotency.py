"""``Idempotency-Key`` for the endpoints that move money, with Stripe's semantics.

A client that sends ``Idempotency-Key: <key>`` (up to 255 characters, unique per client) can
repeat the request safely, say after a timeout:

* the same key with the same body (and path) gets the stored response again, with the header
  ``Idempotent-Replayed: true``, and nothing is done twice;
* the same key with another body or path is **409**;
* a repeat that arrives while the first is still being answered is **409** too (retry later);
* a response of 500 or more is not kept, so a retry runs the request again.

Keys belong to the signed-in person (two people may use the same key) and are kept
``[payments] idempotency_key_hours`` (24 by default); an older key starts afresh.

Handlers opt in with ``middleware=[idempotent]``. The middleware sits inside the site's
authentication, so ``scope["user"]`` is known, and inside the exception handling, so its errors
are problem details like any other.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from litestar.exceptions import ClientException, ValidationException
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from mercato.core.db import utcnow
from mercato.core.payments.models import IdempotencyKey

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPRequestEvent,
        HTTPResponseStartEvent,
        Message,
        Receive,
        ReceiveMessage,
        Scope,
        Send,
    )

    from mercato.core.site import Site

HEADER = b"idempotency-key"
MAX_KEY = 255
"""The longest key (the column's length)."""


class IdempotencyConflict(ClientException):
    status_code = 409


def idempotent(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        key = next((value.decode("latin-1") for name, value in scope["headers"] if name == HEADER), None)
        principal = scope.get("user")
        if key is None or principal is None or scope.get("method") != "POST":
            await app(scope, receive, send)
            return
        if not key or len(key) > MAX_KEY or not key.isprintable():
            raise ValidationException(
                f"The Idempotency-Key header must be 1 to {MAX_KEY} printable characters."
            )
        site: Site = scope["litestar_app"].state["site"]
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(b"POST " + scope["path"].encode() + b"\n" + body).hexdigest()
        row_id = await _claim(site, principal.user_id, key, fingerprint)
        if isinstance(row_id, IdempotencyKey):
            await _replay(row_id, send)
            return

        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        replayed = False

        async def replay_body() -> ReceiveMessage:
            nonlocal replayed
            if not replayed:
                replayed = True
                message: HTTPRequestEvent = {"type": "http.request", "body": body, "more_body": False}
                return message
            return await receive()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await app(scope, replay_body, capture)
        except BaseException:
            await _release(site, row_id)
            raise
        status = int(started.get("status", 500))
        if status >= 500:
            await _release(site, row_id)
            return
        content_type = next((value.decode("latin-1") for name, value in started.get("headers", [])
                             if name.lower() == b"content-type"), "")
        async with site.db.transaction() as session:
            row = await session.get(IdempotencyKey, row_id)
            if row is not None:
                row.status_code, row.content_type, row.body = status, content_type[:100], b"".join(chunks)

    return middleware


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(parts)


async def _claim(site: Site, user_id: uuid.UUID, key: str, fingerprint: str) -> uuid.UUID | IdempotencyKey:
    """This request's new row, or the finished row to replay; 409 for a conflict."""
    expired = utcnow() - timedelta(hours=site.settings.payments.idempotency_key_hours)
    async with site.db.transaction() as session:
        await session.execute(delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key, IdempotencyKey.created_at < expired
        ))
        row_id = uuid.uuid4()
        try:
            async with session.begin_nested():
                session.add(IdempotencyKey(id=row_id, user_id=user_id, key=key, fingerprint=fingerprint))
            return row_id
        except IntegrityError:
            pass
        found = await session.scalar(select(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key))
    if found is None:  # deleted meanwhile (expired, or its request failed): the client retries
        raise IdempotencyConflict("A request with this Idempotency-Key just ended; send it again.")
    if found.fingerprint != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    if found.status_code is None:
        raise IdempotencyConflict(
            "A request with this Idempotency-Key is still being answered; retry shortly."
        )
    return found


async def _replay(row: IdempotencyKey, send: Send) -> None:
    headers = [(b"idempotent-replayed", b"true"), (b"content-length", str(len(row.body)).encode())]
    if row.content_type:
        headers.append((b"content-type", row.content_type.encode("latin-1")))
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": row.status_code or 200,
                                     "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": row.body, "more_body": False})


async def _release(site: Site, row_id: uuid.UUID) -> None:
    """Forget a key whose request failed, so that a retry runs it again."""
    async with site.db.transaction() as session:
        await session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row_id))
