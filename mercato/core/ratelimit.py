"""Rate limits kept in the database, so every app instance counts against the same budget.

A limit is a fixed window: ``limit`` hits per ``window_seconds`` for one ``subject`` (a
client address, an account, an e-mail address) in one ``bucket`` (``"login:ip"``,
``"mail:account"``...). Each hit is one atomic ``INSERT … ON CONFLICT DO UPDATE …
RETURNING count`` in its own short transaction, so it counts even when the request it
belongs to fails later, and concurrent hits from any number of processes never lose an
increment. Subjects are hashed before they become part of a key: addresses and e-mails
are not stored in clear. Expired windows are deleted now and then by whoever hits.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from litestar.exceptions import HTTPException
from sqlalchemy import Integer, String, delete
from sqlalchemy.orm import Mapped, mapped_column

from mercato.core.db import Base, Database, conflict_insert, utcnow

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection

log = structlog.get_logger("mercato.ratelimit")

KEY_LENGTH = 255
SUBJECT_HASH_LENGTH = 32
CLEANUP_EVERY = 500

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimitCounter(Base):
    """The hits of one subject in one bucket during one window."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    """``<bucket>:<hashed subject>:<window start, unix seconds>``."""
    count: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    """End of the window; the row is useless (and deleted by the cleanup) afterwards."""


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one hit."""

    allowed: bool
    """``count <= limit``."""
    count: int
    """Hits in the current window, this one included."""
    limit: int
    retry_after: int
    """Whole seconds until the window ends (at least 1)."""


class RateLimited(HTTPException):
    """429 Too Many Requests, with ``Retry-After`` and a human sentence saying how long."""

    status_code = 429

    def __init__(self, retry_after: int, *, message: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        detail = f"{message or 'Too many attempts.'} Try again in {describe_wait(self.retry_after)}."
        super().__init__(
            detail=detail, status_code=429, headers={"Retry-After": str(self.retry_after)},
            extra={"retry_after": self.retry_after},
        )


def describe_wait(seconds: int) -> str:
    """``"42 seconds"``, ``"1 second"``; ``"3 minutes"`` from two minutes up (rounded up)."""
    if seconds >= 120:
        return f"{math.ceil(seconds / 60)} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


class RateLimiter:
    """Fixed-window counters in the site's database (shared by every app instance).

    ``secret``, when given, keys the subject hash (HMAC-SHA256) so that hashed IPv4
    addresses cannot be reversed by hashing all four billion of them.
    """

    def __init__(self, db: Database, *, secret: str | bytes | None = None,
                 cleanup_every: int = CLEANUP_EVERY) -> None:
        self.db = db
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self._dialect = db.engine.dialect.name
        if self._dialect not in ("sqlite", "postgresql"):
            raise ValueError(f"rate limits need SQLite or PostgreSQL, not {self._dialect}")
        self.cleanup_every = max(1, cleanup_every)
        self._hits = 0

    def subject_hash(self, subject: str) -> str:
        """The stored form of ``subject``: 32 hex digits of its (keyed) SHA-256."""
        data = subject.encode()
        if self._secret:
            digest = hmac.new(self._secret, data, hashlib.sha256).hexdigest()
        else:
            digest = hashlib.sha256(data).hexdigest()
        return digest[:SUBJECT_HASH_LENGTH]

    async def hit(self, bucket: str, subject: str, *, limit: int, window_seconds: int,
                  cost: int = 1) -> RateDecision:
        """Count ``cost`` hits of ``subject`` in ``bucket`` and say whether it is within ``limit``.

        The hit is committed at once in its own transaction, whatever happens next. On SQLite,
        call it before the request's own session writes: that session holds the write lock,
        and the hit would wait for it (the 30 s busy timeout) and then fail.
        """
        if limit < 0 or window_seconds < 1 or cost < 0:
            raise ValueError("limit and cost must be >= 0 and window_seconds >= 1")
        now = utcnow()
        timestamp = now.timestamp()
        start = int(timestamp // window_seconds) * window_seconds
        key = f"{bucket}:{self.subject_hash(subject)}:{start}"
        if len(key) > KEY_LENGTH:
            raise ValueError(f"bucket name too long: {bucket!r}")
        expires_at = now + timedelta(seconds=start + window_seconds - timestamp)

        insert = conflict_insert(self._dialect)
        counter = RateLimitCounter
        statement = (
            insert(counter)
            .values(key=key, count=cost, expires_at=expires_at)
            .on_conflict_do_update(index_elements=[counter.key], set_={"count": counter.count + cost})
            .returning(counter.count)
        )
        async with self.db.engine.begin() as connection:
            count = int((await connection.execute(statement)).scalar_one())

        self._hits += 1
        if self._hits % self.cleanup_every == 0:
            await self._cleanup_quietly()
        retry_after = max(1, math.ceil(start + window_seconds - timestamp))
        return RateDecision(allowed=count <= limit, count=count, limit=limit, retry_after=retry_after)

    async def check(self, bucket: str, subject: str, *, limit: int, window_seconds: int,
                    message: str | None = None) -> None:
        """:meth:`hit`, raising :class:`RateLimited` when over the limit.

        ``message`` replaces the leading "Too many attempts." of the error's detail.
        """
        decision = await self.hit(bucket, subject, limit=limit, window_seconds=window_seconds)
        if not decision.allowed:
            raise RateLimited(decision.retry_after, message=message)

    async def cleanup(self) -> int:
        """Delete the counters of windows that have ended; returns how many went."""
        expired = delete(RateLimitCounter).where(RateLimitCounter.expires_at < utcnow())
        async with self.db.engine.begin() as connection:
            result: Any = await connection.execute(expired)
        return int(result.rowcount or 0)

    async def _cleanup_quietly(self) -> None:
        try:
            deleted = await self.cleanup()
        except Exception:  # housekeeping must never fail a hit
            log.warning("rate limit cleanup failed", exc_info=True)
        else:
            log.debug("rate limit cleanup", deleted=deleted)


def client_address(request: ASGIConnection[Any, Any, Any, Any], trusted_proxies: Sequence[str]) -> str:
    """The address of the client: the peer, or, when the peer is a trusted proxy, the
    right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.

    ``trusted_proxies`` holds addresses or networks (``"10.0.0.0/8"``). A forwarded header
    from any other peer is ignored: anyone can send one.
    """
    peer = request.client.host if request.client and request.client.host else "unknown"
    networks = _networks(tuple(trusted_proxies))
    if not networks or not _is_trusted(_parse(peer), networks):
        return _normal(peer)
    entries = [
        entry.strip()
        for value in request.headers.getall("x-forwarded-for", [])
        for entry in value.split(",")
        if entry.strip()
    ]
    for entry in reversed(entries):
        address = _parse(entry)
        if not _is_trusted(address, networks):
            return str(address) if address is not None else entry[:64]
    # Every hop is a trusted proxy: the left-most one is the closest to the client we know.
    return _normal(entries[0]) if entries else _normal(peer)


@functools.lru_cache(maxsize=16)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks: list[IPNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.warning("ignoring invalid trusted proxy", entry=entry)
    return tuple(networks)


def _parse(value: str) -> IPAddress | None:
    """An address from a peer or a forwarded entry (``"[::1]:443"`` and ``"1.2.3.4:80"`` too)."""
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: IPAddress | None, networks: tuple[IPNetwork, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def _normal(value: str) -> str:
    address = _parse(value)
    return str(address) if address is not None else value[:64]
