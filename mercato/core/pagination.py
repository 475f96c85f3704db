"""Cursor pagination: ``?limit=&cursor=`` → ``{"items": [...], "next_cursor": ...}``.

A cursor is the sort key of the last item seen, JSON-encoded and base64url'd: opaque to
clients, stable while rows are added, and cheap (a keyset ``WHERE``, never ``OFFSET``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar.params import QueryParameter
from sqlalchemy import and_, or_

from mercato.core.errors import field_error

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Select
    from sqlalchemy.ext.asyncio import AsyncSession

MAX_LIMIT = 100
Limit = Annotated[int, QueryParameter(ge=1, le=MAX_LIMIT, description="Items per page (1-100).")]
Cursor = Annotated[str | None, QueryParameter(max_length=500, description="The last `next_cursor`.")]
DEFAULT_LIMIT = 20


def encode_cursor(*key: Any) -> str:
    """The cursor pointing after an item whose sort key is ``key``."""
    return base64.urlsafe_b64encode(msgspec.json.encode(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The sort key in ``cursor`` (``None`` for the first page); 400 when it was not ours."""
    if not cursor:
        return None
    try:
        key = msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        key = None
    if not isinstance(key, list) or len(key) != arity:
        raise field_error("cursor", "This cursor is not valid; start again without one.")
    return key


async def newest_first(
    session: AsyncSession, query: Select[Any], *, moment: Any, row_id: Any, cursor: str | None, limit: int,
    keep: Callable[[Any], bool] | None = None,
) -> tuple[list[Any], str | None]:
    """One page of ``query``'s rows, newest ``moment`` first (``row_id`` breaks ties), after
    ``cursor``; and the cursor of the next page. ``keep`` filters rows in Python (what SQL
    cannot, e.g. a JSON list); rows are then read in keyset batches until the page is full."""

    def after(when: datetime, last: uuid.UUID) -> ColumnElement[bool]:
        return or_(moment < when, and_(moment == when, row_id < last))

    query = query.order_by(moment.desc(), row_id.desc())
    start = decode_cursor(cursor, 2)
    if start:
        try:
            when, last = datetime.fromisoformat(str(start[0])), uuid.UUID(str(start[1]))
            if when.tzinfo is None:
                raise ValueError("naive")
        except ValueError:
            raise field_error("cursor", "This cursor is not valid; start again without one.") from None
        query = query.where(after(when, last))
    rows: list[Any] = []
    batch_size = limit + 1 if keep is None else 200
    while len(rows) <= limit:
        batch = list((await session.execute(query.limit(batch_size))).scalars())
        rows += batch if keep is None else [row for row in batch if keep(row)]
        if keep is None or len(batch) < batch_size:
            break
        query = query.where(after(*_key_of(batch[-1], moment, row_id)))
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        when, last = _key_of(page[-1], moment, row_id)
        if when is not None:
            next_cursor = encode_cursor(when.isoformat(), str(last))
    return page, next_cursor


def _key_of(row: Any, moment: Any, row_id: Any) -> tuple[Any, Any]:
    return getattr(row, moment.key), getattr(row, row_id.key)
