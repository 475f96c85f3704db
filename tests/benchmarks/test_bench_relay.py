"""Outbox relay throughput: committed outbox rows → JetStream, in events per second.

A started site (relay and consumers running in this process) gets N events emitted in
batches of BATCH per transaction. The clock starts when the first batch has committed and
stops when the ``outbox`` table is empty (every row published and deleted). Run without
any handler (the relay alone) and with one handler (whose consumer competes with the relay
for the database); with a handler the end-to-end rate (first commit → last event handled)
is printed too.

A second test measures the relay alone on an outbox filled beforehand (no concurrent
inserts, no consumers): its capacity, rather than how well it keeps up with writers.

Baseline: raw nats-py ``js.publish_async`` of the same N payloads (same headers) to a
stream on the same server, all acknowledged: the ratio is the cost of the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import msgspec
import nats
import pytest
from sqlalchemy import func, select

from mercato import hookimpl
from mercato.core.events import Event, EventHandler, OutboxEvent, emit
from mercato.core.events.relay import OutboxRelay
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from tests.benchmarks._bench import ms, rate, report

N = 5000
BATCH = 500
TARGET_EVENTS_PER_SECOND = 2000
POLL_SECONDS = 0.005
DRAIN_TIMEOUT = 90.0


class Recorder:
    """A plugin with one handler that records which events it received, and when."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.last_at = 0.0
        self.all_seen = asyncio.Event()

    @hookimpl
    def register_event_handlers(self, site: Site) -> list[EventHandler]:
        return [EventHandler(id="bench-relay", events=("bench.tick",), handle=self.handle)]

    async def handle(self, event: Event, session: Any) -> None:
        self.seen.add(event.payload["i"])
        self.last_at = time.perf_counter()
        if len(self.seen) == N:
            self.all_seen.set()


async def outbox_count(site: Site) -> int:
    async with site.db.sessionmaker() as session:
        count = (await session.execute(select(func.count()).select_from(OutboxEvent))).scalar_one()
        await session.rollback()
    return int(count)


async def raw_jetstream_publish(url: str, payloads: list[tuple[uuid.UUID, bytes]]) -> float:
    """Seconds to publish ``payloads`` with ``publish_async`` and have every ack back."""
    stream = f"BENCH_RAW_{uuid.uuid4().hex[:8].upper()}"
    subject = f"{stream.lower()}.bench.tick"
    nc = await nats.connect(url)
    js = nc.jetstream()
    try:
        await js.add_stream(name=stream, subjects=[f"{stream.lower()}.*.*"],
                            duplicate_window=300.0)
        await js.publish(subject, b"warm-up", stream=stream)  # open the async reply inbox
        started = time.perf_counter()
        futures = [
            await js.publish_async(subject, data, stream=stream,
                                   headers={"Nats-Msg-Id": str(event_id)})
            for event_id, data in payloads
        ]
        acks = await asyncio.wait_for(asyncio.gather(*futures), DRAIN_TIMEOUT)
        seconds = time.perf_counter() - started
        assert len({ack.seq for ack in acks}) == len(payloads)
        info = await js.stream_info(stream)
        assert info.state.messages == len(payloads) + 1
    finally:
        with contextlib.suppress(Exception):
            await js.delete_stream(stream)
        await nc.close()
    return seconds


def nats_url_of(site: Site) -> str:
    nc = site.events.nc
    assert nc is not None
    return nc.connected_url.geturl() if nc.connected_url else site.settings.events.nats_url


def payloads_of(events: list[Event]) -> list[tuple[uuid.UUID, bytes]]:
    return [(event.id, msgspec.json.encode(event)) for event in events]


async def emit_in_batches(site: Site) -> tuple[list[Event], float, float]:
    """Emit N events, BATCH per transaction; return them, the first commit's time and the
    seconds all batches took."""
    emitted: list[Event] = []
    first_commit = 0.0
    started = time.perf_counter()
    for start in range(0, N, BATCH):
        async with site.db.transaction() as session:
            for i in range(start, min(start + BATCH, N)):
                emitted.append(emit(session, Event(type="bench.tick", payload={"i": i})))
        if start == 0:
            first_commit = time.perf_counter()
    return emitted, first_commit, time.perf_counter() - started


@pytest.mark.timeout(300)
@pytest.mark.parametrize("with_handler", [False, True], ids=["relay-only", "with-handler"])
async def test_relay_throughput(make_settings: Any, sites: Any, with_handler: bool) -> None:
    settings = make_settings()
    recorder = Recorder()
    pm = build_plugin_manager(settings, extra=[("bench", recorder)]) if with_handler else None
    site = await sites.start(settings, pm=pm)
    relay = site.events.relay
    assert relay is not None
    published_before = relay.published

    emitted, first_commit, emit_seconds = await emit_in_batches(site)

    while await outbox_count(site):
        if time.perf_counter() - first_commit > DRAIN_TIMEOUT:
            raise AssertionError(f"outbox not empty after {DRAIN_TIMEOUT:.0f}s")
        await asyncio.sleep(POLL_SECONDS)
    relay_seconds = time.perf_counter() - first_commit

    assert relay.published - published_before == N
    assert site.events.js is not None
    info = await site.events.js.stream_info(settings.events.stream)
    assert info.state.messages == N

    handled_line = "handler: none registered"
    if with_handler:
        await asyncio.wait_for(recorder.all_seen.wait(), DRAIN_TIMEOUT)
        assert recorder.seen == set(range(N))
        handled_seconds = recorder.last_at - first_commit
        handled_line = (f"end to end (first commit → last event handled): "
                        f"{rate(N, handled_seconds):,.0f} events/s ({ms(handled_seconds)})")

    raw_seconds = await raw_jetstream_publish(nats_url_of(site), payloads_of(emitted))

    ours = rate(N, relay_seconds)
    base = rate(N, raw_seconds)
    label = "with one handler" if with_handler else "relay only, no handler"
    report(f"relay throughput ({label}): {N:,} events, {BATCH} per transaction", [
        f"relay throughput: {ours:,.0f} events/s (first commit → outbox empty: "
        f"{ms(relay_seconds)}; emitting all {N // BATCH} batches took {ms(emit_seconds)})",
        f"baseline raw JetStream publish_async: {base:,.0f} msg/s ({ms(raw_seconds)})",
        f"ratio (relay / baseline): {ours / base:.2f}",
        handled_line,
        f"target: >= {TARGET_EVENTS_PER_SECOND:,} events/s → "
        f"{'met' if ours >= TARGET_EVENTS_PER_SECOND else 'NOT met'}",
    ])


async def test_relay_drain_of_a_full_outbox(make_settings: Any, sites: Any) -> None:
    settings = make_settings()
    site = await sites.start(settings, background=False)  # no relay: the outbox fills up
    emitted, _, _ = await emit_in_batches(site)
    assert await outbox_count(site) == N
    assert site.events.nc is not None
    assert site.events.js is not None
    relay = OutboxRelay(
        site.db, site.events.nc, site.events.js, stream=settings.events.stream,
        prefix=settings.events.subject_prefix, batch_size=settings.events.relay_batch_size,
    )

    started = time.perf_counter()
    rounds = 0
    while await relay.publish_pending():
        rounds += 1
    drain_seconds = time.perf_counter() - started

    assert await outbox_count(site) == 0
    assert relay.published == N
    info = await site.events.js.stream_info(settings.events.stream)
    assert info.state.messages == N

    raw_seconds = await raw_jetstream_publish(nats_url_of(site), payloads_of(emitted))
    ours = rate(N, drain_seconds)
    base = rate(N, raw_seconds)
    report(f"relay drain of a full outbox: {N:,} rows, "
           f"{settings.events.relay_batch_size} per round", [
        f"relay drain: {ours:,.0f} events/s ({ms(drain_seconds)}, {rounds} rounds, "
        f"{ms(drain_seconds / rounds)} per round)",
        f"baseline raw JetStream publish_async: {base:,.0f} msg/s ({ms(raw_seconds)})",
        f"ratio (relay / baseline): {ours / base:.2f}",
        f"target: >= {TARGET_EVENTS_PER_SECOND:,} events/s → "
        f"{'met' if ours >= TARGET_EVENTS_PER_SECOND else 'NOT met'}",
    ])
