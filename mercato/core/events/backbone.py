"""Connecting a site to NATS: the stream, the relay, the consumers and live fan-out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

import nats
import nats.js.errors
import structlog
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from mercato.core.events import OUTBOX_DIRTY
from mercato.core.events.consumers import EventConsumers
from mercato.core.events.embedded import EmbeddedNats
from mercato.core.events.live import LIVE_PENDING, LiveFanout
from mercato.core.events.relay import OutboxRelay

if TYPE_CHECKING:
    from nats.aio.client import Client as NATS
    from nats.js import JetStreamContext
    from sqlalchemy.orm import Session

    from mercato.core.db import Database
    from mercato.core.events.types import EventHandler
    from mercato.core.settings import Settings

log = structlog.get_logger("mercato.events")

DUPLICATE_WINDOW_SECONDS = 300.0


class NatsUnavailable(RuntimeError):
    """NATS could not be reached at startup."""


class EventBackbone:
    """Owns one NATS connection per process and the background work that uses it."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.embedded: EmbeddedNats | None = None
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self.relay: OutboxRelay | None = None
        self.consumers: EventConsumers | None = None
        self.live: LiveFanout | None = None
        self._closing = False
        self._pending: set[asyncio.Task[None]] = set()
        self._wake_subscription: Any = None
        db.on_commit(self._after_commit)

    @property
    def stream(self) -> str:
        return self.settings.events.stream

    @property
    def prefix(self) -> str:
        return self.settings.events.subject_prefix

    @property
    def wake_subject(self) -> str:
        """Plain NATS subject (not in the stream) that wakes relays in worker processes."""
        return f"{self.prefix}.internal.outbox.wake"

    def _after_commit(self, session: Session) -> None:
        live = session.info.pop(LIVE_PENDING, None)
        if live and self.live is not None and self.nc is not None and self.nc.is_connected:
            for user_id, message in live:
                self._spawn(self.live.publish(user_id, message))
        if not session.info.pop(OUTBOX_DIRTY, False):
            return
        if self.relay is not None:
            self.relay.wake()
        elif self.nc is not None and self.nc.is_connected:
            # No relay here (`[worker] in_web = false`): nudge the workers' relays.
            self._spawn(self.nc.publish(self.wake_subject))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def connect(self) -> None:
        """Connect (starting the embedded server when no URL is set) and ensure the stream."""
        url = self.settings.events.nats_url
        if not url:
            self.embedded = EmbeddedNats(self.settings.data_path / "nats")
            url = await asyncio.to_thread(self.embedded.start)
        servers = [part.strip() for part in url.split(",") if part.strip()]
        try:
            self.nc = await nats.connect(
                servers=servers, name=f"mercato:{self.settings.site.name}", connect_timeout=3,
                max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                error_cb=self._on_error, disconnected_cb=self._on_disconnect,
                reconnected_cb=self._on_reconnect,
            )
        except Exception as exc:
            await self._stop_embedded()
            raise NatsUnavailable(
                f"cannot reach NATS at {url} ({exc!r}): start it, fix `[events] nats_url`, "
                "or leave nats_url empty to use the embedded server"
            ) from exc
        self.js = self.nc.jetstream()
        await self.ensure_stream()
        self.live = LiveFanout(self.nc, self.prefix)

    async def ensure_stream(self) -> None:
        assert self.js is not None
        events = self.settings.events
        config = StreamConfig(
            name=self.stream, subjects=[f"{self.prefix}.*.*"], storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS, max_age=events.stream_max_age_days * 86400.0,
            duplicate_window=DUPLICATE_WINDOW_SECONDS, num_replicas=events.stream_replicas,
        )
        try:
            await self.js.add_stream(config)
        except nats.js.errors.BadRequestError:
            await self.js.update_stream(config)
        except nats.js.errors.ServiceUnavailableError as exc:
            raise NatsUnavailable(
                f"the NATS server at {self.settings.events.nats_url or 'the embedded address'} "
                "has no JetStream: start it with `-js`"
            ) from exc

    async def start_background(self, handlers: list[EventHandler]) -> None:
        """Start the consumers first (so none misses an event), then the relay."""
        assert self.nc is not None
        assert self.js is not None
        events = self.settings.events
        self.consumers = EventConsumers(
            self.db, self.js, handlers, stream=self.stream, prefix=self.prefix,
            max_deliver=events.max_deliver, backoff=events.backoff_seconds,
            ack_wait=events.ack_wait_seconds,
        )
        await self.consumers.start()
        self.relay = OutboxRelay(
            self.db, self.nc, self.js, stream=self.stream, prefix=self.prefix,
            batch_size=events.relay_batch_size, sweep_seconds=events.relay_sweep_seconds,
            keep_markers_days=events.stream_max_age_days + 1,
        )
        self.relay.start()
        self.relay.wake()
        relay = self.relay

        async def on_wake(_msg: Any) -> None:
            relay.wake()

        self._wake_subscription = await self.nc.subscribe(self.wake_subject, cb=on_wake)

    async def check(self) -> None:
        """Raise unless NATS is connected and the stream answers (for ``/ready``)."""
        if self.nc is None or self.js is None or not self.nc.is_connected:
            raise NatsUnavailable("not connected to NATS")
        await self.js.stream_info(self.stream)

    async def close(self) -> None:
        self._closing = True
        if self._wake_subscription is not None:
            with contextlib.suppress(Exception):
                await self._wake_subscription.unsubscribe()
            self._wake_subscription = None
        if self.relay is not None:
            await self.relay.stop()
            self.relay = None
        if self.consumers is not None:
            await self.consumers.stop()
            self.consumers = None
        if self.nc is not None:
            try:
                await asyncio.wait_for(self.nc.drain(), 5)
            except Exception:
                await self.nc.close()
            self.nc = None
        await self._stop_embedded()

    async def _stop_embedded(self) -> None:
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None

    async def _on_error(self, exc: Exception) -> None:
        if not self._closing:
            log.warning("NATS connection error", error=repr(exc))

    async def _on_disconnect(self) -> None:
        if not self._closing:
            log.warning("disconnected from NATS; reconnecting")

    async def _on_reconnect(self) -> None:
        log.info("reconnected to NATS")

    def info(self) -> dict[str, Any]:
        return {"url": self.nc.connected_url.geturl() if self.nc and self.nc.connected_url else ""}
