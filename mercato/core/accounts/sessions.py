"""Who is asking: the principal of a request, and session revocation on every instance.

Tokens are verified without a database round trip (a JWT signature check, ~50 µs). What
makes revocation immediate is the :class:`RevocationList` every process keeps in memory:

- the instance that revokes a session adds it at commit time, then publishes the id on the
  plain NATS subject ``<prefix>.internal.auth.revoked``, which every other instance
  subscribes to;
- every instance also reads sessions revoked since its last look every few seconds (and
  all live revocations at start), so a NATS message lost during a reconnect costs seconds,
  not the token's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import select

from mercato.core.accounts.models import AuthSession
from mercato.core.db import utcnow
from mercato.core.ratelimit import RateLimiter
from mercato.core.security.tokens import TokenSigner
from mercato.core.tasks import Units, stop_task

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from mercato.core.site import Site

log = structlog.get_logger("mercato.accounts")

POLL_SECONDS = 3.0
_PENDING_KEY = "mercato.revoked_sessions"
_MAIL_KEY = "mercato.mail_after_commit"


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in person behind a request (``request.user``)."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    roles: frozenset[str]
    """Roles when the token was issued; authorise against the database row, which is current."""
    via: str
    """``bearer`` (API token) or ``cookie`` (the theme's session)."""


class RevocationList:
    """Session ids that are revoked, each kept until no token of it can still be valid."""

    def __init__(self) -> None:
        self._until: dict[uuid.UUID, float] = {}
        self._next_prune = 0.0

    def add(self, session_id: uuid.UUID, until: float) -> None:
        self._until[session_id] = max(until, self._until.get(session_id, 0.0))

    def __contains__(self, session_id: object) -> bool:
        now = time.time()
        if now >= self._next_prune:
            self._prune(now)
        return session_id in self._until

    def __len__(self) -> int:
        return len(self._until)

    def _prune(self, now: float) -> None:
        self._until = {sid: until for sid, until in self._until.items() if until > now}
        self._next_prune = now + 60


class _Revoked(msgspec.Struct, frozen=True):
    sessions: list[tuple[uuid.UUID, float]]


class AccountsRuntime:
    """The per-site state of the accounts domain: token signer and revocations."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = site.settings.accounts
        self.signer = TokenSigner(site.settings.secret_key(), issuer=site.settings.site.base_url.rstrip("/"))
        self.revoked = RevocationList()
        self._last_poll = utcnow()
        self._task: asyncio.Task[None] | None = None
        self._units = Units()
        self._subscription: Any = None
        self._mails: set[asyncio.Task[None]] = set()
        site.db.on_commit(self._after_commit)

    @property
    def subject(self) -> str:
        return f"{self.site.events.prefix}.internal.auth.revoked"

    def defer_revocation(self, session: Session, revoked: list[AuthSession]) -> None:
        """Apply ``revoked`` here and on every instance once ``session`` commits."""
        session.info.setdefault(_PENDING_KEY, []).extend(
            (row.id, row.expires_at.timestamp()) for row in revoked
        )

    def mail_after_commit(self, session: Session, *, to: str, template: str, **context: Any) -> None:
        """Send a mail once ``session`` commits, in the background (a failure is logged):
        for notices that must not undo the change, or slow down the answer."""
        session.info.setdefault(_MAIL_KEY, []).append((to, template, context))

    def _after_commit(self, session: Session) -> None:
        for to, template, context in session.info.pop(_MAIL_KEY, ()):
            task = asyncio.get_running_loop().create_task(self._send(to, template, context))
            self._mails.add(task)
            task.add_done_callback(self._mails.discard)
        pending = session.info.pop(_PENDING_KEY, None)
        if not pending:
            return
        for sid, until in pending:
            self.revoked.add(sid, until)
        nc = self.site.events.nc
        if nc is not None and nc.is_connected:
            payload = msgspec.json.encode(_Revoked(sessions=pending))
            task = asyncio.get_running_loop().create_task(nc.publish(self.subject, payload))
            task.add_done_callback(_log_failure)

    async def _send(self, to: str, template: str, context: dict[str, Any]) -> None:
        try:
            await self.site.mail.send(to=to, template=template, **context)
        except Exception:
            log.exception("mail after commit failed", template=template)

    async def start(self) -> None:
        """Load live revocations, subscribe to other instances' and start polling. With the
        database down the site still starts (``/ready`` reports it); loading retries."""
        try:
            await self._prepare()
            ready = True
        except Exception:
            log.warning("accounts could not read the database at start; retrying in the background")
            ready = False
        nc = self.site.events.nc
        if nc is not None:
            self._subscription = await nc.subscribe(self.subject, cb=self._on_message)
        self._task = asyncio.get_running_loop().create_task(self._poll_forever(ready))

    async def _prepare(self) -> None:
        from mercato.core.accounts.profiles import sync_skills

        async with self.site.db.transaction() as session:
            await sync_skills(session)
        await self._poll(since=None)

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        await self._units.drain()
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()

    async def _on_message(self, msg: Any) -> None:
        try:
            revoked = msgspec.json.decode(msg.data, type=_Revoked)
        except msgspec.DecodeError:
            log.warning("ignoring a malformed revocation message")
            return
        for sid, until in revoked.sessions:
            self.revoked.add(sid, until)

    async def _poll_forever(self, ready: bool) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                if not ready:
                    await self._units.run(self._prepare())
                    ready = True
                    continue
                await self._units.run(self._poll(since=self._last_poll - timedelta(seconds=POLL_SECONDS * 2)))
            except Exception:
                log.exception("reading session revocations failed; retrying")

    async def _poll(self, since: Any) -> None:
        now = utcnow()
        query = select(AuthSession.id, AuthSession.expires_at).where(AuthSession.revoked_at.is_not(None))
        query = query.where(AuthSession.expires_at > now)
        if since is not None:
            query = query.where(AuthSession.revoked_at >= since)
        async with self.site.db.reading() as session:
            rows = (await session.execute(query)).all()
        for sid, expires_at in rows:
            self.revoked.add(sid, expires_at.timestamp())
        self._last_poll = now


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("publishing a session revocation failed; other instances will poll it",
                    error=repr(task.exception()))


def limiter_of(site: Site) -> RateLimiter:
    """The site's shared rate limiter (subjects keyed with the site secret)."""
    limiter = site.state.get("ratelimit")
    if limiter is None:
        limiter = site.state["ratelimit"] = RateLimiter(site.db, secret=site.settings.secret_key())
    return limiter


def runtime_of(site: Site) -> AccountsRuntime:
    """The accounts runtime of ``site`` (made on first use)."""
    runtime = site.state.get("accounts")
    if runtime is None:
        runtime = site.state["accounts"] = AccountsRuntime(site)
    return runtime
