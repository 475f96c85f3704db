"""Durable JetStream pull consumers that run the handlers from ``register_event_handlers``.

Each handler gets one durable consumer per event pattern (this works on every JetStream
version, old ones included that lack multi-subject filters). A delivered event runs in a
database transaction together with a ``processed_events`` row keyed by (handler id, event
id); only after that commit is the message acknowledged. A redelivered event finds its
marker and is acknowledged without running again: effects happen exactly once. A failing
handler is logged and retried with back-off up to ``max_deliver`` times; it never stops
the other handlers. Events fetched together are handled in one transaction; when one of
them fails, the batch is rolled back and handled event by event.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING, Any

import msgspec
import nats.errors
import nats.js.errors
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mercato.core.events.models import ProcessedEvent
from mercato.core.events.types import Event, EventHandler
from mercato.core.tasks import Units, stop_task

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js import JetStreamContext

    from mercato.core.db import Database

log = structlog.get_logger("mercato.events.consumers")

FETCH_BATCH = 32
FETCH_TIMEOUT = 5.0


def durable_name(handler_id: str, pattern: str) -> str:
    """``notifications`` + ``milestone.*`` → ``notifications__milestone_ALL``."""
    token = re.sub(r"[^A-Za-z0-9_-]", "_", pattern.replace("*", "ALL").replace(">", "REST"))
    return f"{handler_id}__{token}"


class EventConsumers:
    """Runs every registered handler on its own task(s)."""

    def __init__(
        self, db: Database, js: JetStreamContext, handlers: list[EventHandler], *,
        stream: str, prefix: str, max_deliver: int, backoff: list[float], ack_wait: float,
    ) -> None:
        seen: set[str] = set()
        for handler in handlers:
            if handler.id in seen:
                raise ValueError(f"two event handlers share the id {handler.id!r}")
            seen.add(handler.id)
        self.db = db
        self.js = js
        self.handlers = handlers
        self.stream = stream
        self.prefix = prefix
        self.max_deliver = max_deliver
        self.backoff = backoff or [1.0]
        self.ack_wait = ack_wait
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Any] = []
        self._units = Units()

    async def start(self) -> None:
        """Create (or update) the durable consumers, all at once (each is a few round trips to
        the server, and a site has dozens), and start pulling."""
        wanted = [(handler, pattern, durable_name(handler.id, pattern))
                  for handler in self.handlers for pattern in handler.events]
        subs = await asyncio.gather(*(self._subscribe(handler, pattern, name)
                                      for handler, pattern, name in wanted))
        for (handler, _, name), sub in zip(wanted, subs, strict=True):
            self._subscriptions.append(sub)
            self._tasks.append(asyncio.create_task(self._pull(handler, sub, name), name=f"consumer:{name}"))

    async def stop(self) -> None:
        await asyncio.gather(*(stop_task(task) for task in self._tasks))
        self._tasks.clear()
        await self._units.drain()
        # A fetch cancelled as messages arrive leaves them in the subscription's queue, and
        # draining the connection would wait for that queue until its timeout. Unhandled
        # messages are redelivered after ack_wait.
        for sub in self._subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subscriptions.clear()

    async def _subscribe(self, handler: EventHandler, pattern: str, name: str) -> object:
        config = ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL if handler.replay else DeliverPolicy.NEW,
            filter_subject=f"{self.prefix}.{pattern}",
            max_deliver=self.max_deliver,
            ack_wait=self.ack_wait,
            max_ack_pending=1000,
        )
        try:
            await self.js.add_consumer(self.stream, config)
        except nats.js.errors.BadRequestError:
            # An existing durable with other settings (e.g. changed max_deliver): update it.
            info = await self.js.consumer_info(self.stream, name)
            config.deliver_policy = info.config.deliver_policy
            config.opt_start_seq = info.config.opt_start_seq
            await self.js.add_consumer(self.stream, config)
        return await self.js.pull_subscribe_bind(durable=name, stream=self.stream)

    async def _pull(self, handler: EventHandler, sub: object, name: str) -> None:
        failures = 0
        while True:
            try:
                messages = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT)  # type: ignore[attr-defined]
                failures = 0
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # NATS away (restarting, network): wait and pull again; the durable remains.
                failures += 1
                delay = min(0.2 * 2**failures, 5.0)
                log.warning("pulling events failed; retrying", consumer=name,
                            error=repr(exc), retry_in=delay)
                await asyncio.sleep(delay)
                continue
            await self._units.run(self._handle(handler, messages, name))

    async def _handle(self, handler: EventHandler, messages: list[Msg], name: str) -> None:
        """One fetched batch, handled whole even when the consumers stop meanwhile."""
        batch = []
        for message in messages:
            event = await self._decode(message, name)
            if event is not None:
                batch.append((message, event))
        if len(batch) > 1 and await self._deliver_batch(handler, batch):
            return
        for message, event in batch:
            await self._deliver(handler, message, event)

    async def _decode(self, message: Msg, name: str) -> Event | None:
        try:
            return msgspec.json.decode(message.data, type=Event)
        except (msgspec.DecodeError, ValueError) as exc:
            log.error("undecodable event dropped", consumer=name, subject=message.subject,
                      error=str(exc))
            await _quietly(message.term())
            return None

    async def _deliver_batch(self, handler: EventHandler, batch: list[tuple[Msg, Event]]) -> bool:
        """Handle a whole fetch in one transaction (one commit instead of one per event).

        If any event fails, nothing of the batch is committed and ``False`` sends the
        events down the one-by-one path, which isolates the failing one.
        """
        try:
            async with self.db.sessionmaker() as session, session.begin():
                ids = [event.id for _, event in batch]
                done = set(
                    await session.scalars(
                        select(ProcessedEvent.event_id).where(
                            ProcessedEvent.consumer == handler.id, ProcessedEvent.event_id.in_(ids)
                        )
                    )
                )
                for _, event in batch:
                    if event.id in done:
                        continue
                    done.add(event.id)
                    await handler.handle(event, session)
                    session.add(ProcessedEvent(consumer=handler.id, event_id=event.id))
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        for message, _ in batch:
            await _quietly(message.ack())
        return True

    async def _deliver(self, handler: EventHandler, message: Msg, event: Event) -> None:
        try:
            async with self.db.sessionmaker() as session, session.begin():
                done = await session.get(ProcessedEvent, (handler.id, event.id))
                if done is None:
                    await handler.handle(event, session)
                    session.add(ProcessedEvent(consumer=handler.id, event_id=event.id))
        except IntegrityError:
            pass  # another instance handled the same delivery first; that is fine
        except asyncio.CancelledError:
            raise
        except Exception:
            attempt = message.metadata.num_delivered or 1
            if attempt >= self.max_deliver:
                log.exception("event handler failed for the last time; giving up",
                              handler=handler.id, event_id=str(event.id), event_type=event.type,
                              attempts=attempt)
                await _quietly(message.term())
            else:
                delay = self.backoff[min(attempt - 1, len(self.backoff) - 1)]
                log.exception("event handler failed; will retry", handler=handler.id,
                              event_id=str(event.id), event_type=event.type,
                              attempt=attempt, retry_in=delay)
                await _quietly(message.nak(delay=delay))
            return
        await _quietly(message.ack())


async def _quietly(action: object) -> None:
    """Ack/nak/term: when NATS is away the event simply comes again later."""
    try:
        await action  # type: ignore[misc]
    except Exception as exc:
        log.warning("could not acknowledge an event; it will be redelivered", error=repr(exc))
