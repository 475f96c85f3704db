"""Cursor pagination: ``?limit=&cursor=`` → ``{"items": [...], "next_cursor": ...}``.

A cursor is the sort key of the last item seen, JSON-encoded and base64url'd: opaque to
clients, stable while rows are added, and cheap (a keyset ``WHERE``, never ``OFFSET``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

import msgspec
from litestar.params import QueryParameter

from mercato.core.errors import field_error

Limit = Annotated[int, QueryParameter(ge=1, le=100, description="Items per page (1-100).")]
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
