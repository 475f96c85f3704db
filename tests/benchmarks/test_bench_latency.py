"""Commit-to-handler latency: how long after ``emit``'s transaction commits a handler runs.

A started site with one handler; N events are emitted one per transaction, GAP_SECONDS
apart. The commit time is taken right after each commit returns, the handler time when the
handler is called; the report gives p50/p99/max of the difference. A plain NATS subscriber
on the stream's subjects also records when each event reaches NATS, splitting the latency
into commit → published (the relay) and published → handler (the durable consumer).

Baseline: NATS core publish → subscribe latency on the same server for N messages sent
GAP_SECONDS apart: the floor any NATS-based delivery pays.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import msgspec
import nats
from nats.aio.msg import Msg

from mercato import hookimpl
from mercato.core.events import Event, EventHandler, emit
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from tests.benchmarks._bench import ms, percentile, report

N = 300
GAP_SECONDS = 0.005
TARGET_P99_SECONDS = 0.100
WAIT_TIMEOUT = 60.0


class Stopwatch:
    """A plugin whose handler notes when each event (by ``payload["k"]``) arrives."""

    def __init__(self) -> None:
        self.handled: dict[int, float] = {}
        self.all_handled = asyncio.Event()

    @hookimpl
    def register_event_handlers(self, site: Site) -> list[EventHandler]:
        return [EventHandler(id="bench-latency", events=("bench.ping",), handle=self.handle)]

    async def handle(self, event: Event, session: Any) -> None:
        self.handled.setdefault(event.payload["k"], time.perf_counter())
        if len(self.handled) == N:
            self.all_handled.set()


def summary(latencies: list[float]) -> str:
    return (f"p50 {ms(percentile(latencies, 50))}, p90 {ms(percentile(latencies, 90))}, "
            f"p99 {ms(percentile(latencies, 99))}, max {ms(max(latencies))}")


async def nats_core_round_trips(url: str, subject: str) -> list[float]:
    """Latency of N core-NATS messages, publisher and subscriber on separate connections."""
    sent: dict[int, float] = {}
    received: dict[int, float] = {}
    done = asyncio.Event()

    async def on_message(msg: Msg) -> None:
        received[int(msg.data)] = time.perf_counter()
        if len(received) == N:
            done.set()

    subscriber = await nats.connect(url)
    publisher = await nats.connect(url)
    try:
        await subscriber.subscribe(subject, cb=on_message)
        await subscriber.flush()
        for k in range(N):
            sent[k] = time.perf_counter()
            await publisher.publish(subject, str(k).encode())
            await asyncio.sleep(GAP_SECONDS)
        await asyncio.wait_for(done.wait(), WAIT_TIMEOUT)
    finally:
        await publisher.close()
        await subscriber.close()
    return [received[k] - sent[k] for k in range(N)]


async def test_commit_to_handler_latency(make_settings: Any, sites: Any) -> None:
    settings = make_settings()
    stopwatch = Stopwatch()
    site = await sites.start(
        settings, pm=build_plugin_manager(settings, extra=[("bench", stopwatch)])
    )
    assert site.events.nc is not None
    url = site.events.nc.connected_url.geturl() if site.events.nc.connected_url else ""
    url = url or settings.events.nats_url

    # Who sees the event first on NATS: a core subscriber on the stream's subjects.
    published: dict[int, float] = {}
    tap = await nats.connect(url)

    async def on_published(msg: Msg) -> None:
        key = msgspec.json.decode(msg.data, type=Event).payload["k"]
        published.setdefault(key, time.perf_counter())

    await tap.subscribe(f"{settings.events.subject_prefix}.bench.ping", cb=on_published)
    await tap.flush()

    committed: dict[int, float] = {}
    try:
        for k in range(N):
            async with site.db.transaction() as session:
                emit(session, Event(type="bench.ping", payload={"k": k}))
            committed[k] = time.perf_counter()
            await asyncio.sleep(GAP_SECONDS)
        await asyncio.wait_for(stopwatch.all_handled.wait(), WAIT_TIMEOUT)
        await asyncio.sleep(0.05)  # let the tap catch its last messages
    finally:
        await tap.close()

    assert set(stopwatch.handled) == set(range(N))
    latencies = [stopwatch.handled[k] - committed[k] for k in range(N)]
    relay_part = [published[k] - committed[k] for k in range(N) if k in published]
    consumer_part = [stopwatch.handled[k] - published[k] for k in range(N) if k in published]

    baseline = await nats_core_round_trips(url, f"bench_rtt_{settings.events.subject_prefix}.x")

    p99 = percentile(latencies, 99)
    report(f"commit → handler latency: {N} events, one per transaction, "
           f"{GAP_SECONDS * 1000:.0f} ms apart", [
        f"commit → handler:  {summary(latencies)}",
        f"  of which commit → on NATS (relay):       {summary(relay_part)}",
        f"  of which on NATS → handler (consumer):   {summary(consumer_part)}",
        f"baseline NATS core publish → subscribe:  {summary(baseline)}",
        f"ratio (p50 / baseline p50): {percentile(latencies, 50) / percentile(baseline, 50):,.0f}x"
        f", (p99 / baseline p99): {p99 / percentile(baseline, 99):,.0f}x",
        f"target: p99 < {TARGET_P99_SECONDS * 1000:.0f} ms → "
        f"{'met' if p99 < TARGET_P99_SECONDS else 'NOT met'}",
    ])
