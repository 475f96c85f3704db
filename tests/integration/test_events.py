"""The event backbone end to end: outbox → relay → JetStream → durable consumers."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy.event
from sqlalchemy import func, select

from mercato import hookimpl
from mercato.core.events import Event, EventHandler, EventPayload, OutboxEvent, ProcessedEvent, emit
from mercato.core.events.embedded import EmbeddedNats
from mercato.core.plugins import build_plugin_manager
from mercato.core.site import Site
from tests.conftest import _with_database


class Recorder:
    """A plugin whose handlers count what they receive."""

    def __init__(self, *handlers: tuple[str, tuple[str, ...], Callable[[Event], Any] | None]) -> None:
        self.calls: dict[str, Counter[uuid.UUID]] = {}
        self.handlers = []
        for handler_id, events, behaviour in handlers:
            self.calls[handler_id] = Counter()
            self.handlers.append(self._make(handler_id, events, behaviour))

    def _make(self, handler_id: str, events: tuple[str, ...],
              behaviour: Callable[[Event], Any] | None) -> EventHandler:
        async def handle(event: Event, session: Any) -> None:
            if behaviour is not None:
                behaviour(event)

            # Count the call as an effect only if its transaction commits, like a row would.
            def committed(_session: Any) -> None:
                self.calls[handler_id][event.id] += 1

            sqlalchemy.event.listen(session.sync_session, "after_commit", committed, once=True)

        return EventHandler(id=handler_id, events=events, handle=handle)

    @hookimpl
    def register_event_handlers(self, site: Site) -> list[EventHandler]:
        return self.handlers


async def start_with(sites: Any, settings: Any, plugin: object) -> Site:
    pm = build_plugin_manager(settings, extra=[("recorder", plugin)])
    return await sites.start(settings, pm=pm)


async def emit_events(site: Site, count: int, event_type: str = "test.happened") -> list[uuid.UUID]:
    ids = []
    for i in range(count):
        async with site.db.transaction() as session:
            ids.append(emit(session, Event(type=event_type, payload={"i": i})).id)
    return ids


async def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def outbox_size(site: Site) -> int:
    async with site.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxEvent)) or 0)


async def test_committed_event_reaches_its_handler_exactly_once(sites: Any, migrated_settings: Any) -> None:
    recorder = Recorder(("counter", ("test.happened",), None))
    site = await start_with(sites, migrated_settings, recorder)
    ids = await emit_events(site, 20)
    await wait_for(lambda: len(recorder.calls["counter"]) == 20)
    await asyncio.sleep(0.5)  # would a duplicate arrive?
    assert recorder.calls["counter"] == Counter({event_id: 1 for event_id in ids})
    assert await outbox_size(site) == 0
    async with site.db.transaction() as session:
        markers = await session.scalar(select(func.count()).select_from(ProcessedEvent))
    assert markers == 20


async def test_rolled_back_transaction_emits_nothing(sites: Any, migrated_settings: Any) -> None:
    recorder = Recorder(("counter", ("test.*",), None))
    site = await start_with(sites, migrated_settings, recorder)
    with pytest.raises(RuntimeError):
        async with site.db.transaction() as session:
            emit(session, Event(type="test.rolled_back"))
            raise RuntimeError("the change failed")
    [kept] = await emit_events(site, 1, "test.kept")
    await wait_for(lambda: kept in recorder.calls["counter"])
    await asyncio.sleep(0.5)
    assert list(recorder.calls["counter"]) == [kept]
    assert await outbox_size(site) == 0


async def test_typed_payload_round_trips(sites: Any, migrated_settings: Any) -> None:
    class Shipped(EventPayload):
        event_type: ClassVar[str] = "parcel.shipped"
        parcel_id: uuid.UUID
        weight_grams: int

    received: list[Shipped] = []
    recorder = Recorder(("parcels", ("parcel.shipped",),
                         lambda event: received.append(event.payload_as(Shipped))))
    site = await start_with(sites, migrated_settings, recorder)
    parcel = uuid.uuid4()
    actor = uuid.uuid4()
    async with site.db.transaction() as session:
        event = emit(session, Event.of(Shipped(parcel_id=parcel, weight_grams=1200), actor_id=actor))
    await wait_for(lambda: bool(received))
    assert received == [Shipped(parcel_id=parcel, weight_grams=1200)]
    assert event.type == "parcel.shipped"
    assert event.actor_id == actor


async def test_failing_handler_is_retried_and_does_not_block_others(
    sites: Any, migrated_settings: Any
) -> None:
    attempts: Counter[uuid.UUID] = Counter()

    def flaky(event: Event) -> None:
        attempts[event.id] += 1
        if attempts[event.id] < 3:
            raise RuntimeError("temporary failure")

    recorder = Recorder(("flaky", ("test.happened",), flaky), ("steady", ("test.happened",), None))
    site = await start_with(sites, migrated_settings, recorder)
    ids = await emit_events(site, 3)
    await wait_for(lambda: len(recorder.calls["steady"]) == 3, timeout=5)
    await wait_for(lambda: len(recorder.calls["flaky"]) == 3, timeout=15)
    assert all(attempts[event_id] >= 3 for event_id in ids)
    assert recorder.calls["flaky"] == Counter({event_id: 1 for event_id in ids})


async def test_handler_that_always_fails_gives_up_after_max_deliver(
    sites: Any, migrated_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    attempts: Counter[uuid.UUID] = Counter()

    def broken(event: Event) -> None:
        attempts[event.id] += 1
        raise RuntimeError("permanent failure")

    recorder = Recorder(("broken", ("test.happened",), broken), ("steady", ("test.happened",), None))
    site = await start_with(sites, migrated_settings, recorder)
    [event_id] = await emit_events(site, 1)
    max_deliver = migrated_settings.events.max_deliver
    await wait_for(lambda: attempts[event_id] == max_deliver)
    await asyncio.sleep(1.0)
    assert attempts[event_id] == max_deliver
    assert recorder.calls["steady"][event_id] == 1
    async with site.db.transaction() as session:
        marker = await session.get(ProcessedEvent, ("broken", event_id))
    assert marker is None


async def test_two_instances_share_the_work_and_handle_each_event_once(
    sites: Any, migrated_settings: Any
) -> None:
    recorder = Recorder(("shared", ("test.happened",), None))
    first = await start_with(sites, migrated_settings, recorder)
    second = await start_with(sites, migrated_settings, recorder)
    ids = await emit_events(first, 30) + await emit_events(second, 30)
    await wait_for(lambda: len(recorder.calls["shared"]) == 60)
    await asyncio.sleep(0.5)
    assert recorder.calls["shared"] == Counter({event_id: 1 for event_id in ids})


async def test_live_fanout_reaches_a_subscriber_on_another_instance(
    sites: Any, migrated_settings: Any
) -> None:
    first = await sites.start(migrated_settings, background=False)
    second = await sites.start(migrated_settings, background=False)
    user = uuid.uuid4()
    received: list[bytes] = []

    async def on_message(data: bytes) -> None:
        received.append(data)

    subscription = await first.events.live.subscribe(user, on_message)
    await first.events.nc.flush()
    await second.events.live.publish(user, {"kind": "chat.message", "text": "hi"})
    await second.events.live.publish(uuid.uuid4(), {"kind": "not for this user"})
    await wait_for(lambda: bool(received), timeout=5)
    await asyncio.sleep(0.2)
    await subscription.unsubscribe()
    assert received == [b'{"kind":"chat.message","text":"hi"}']


@pytest.mark.timeout(120)
async def test_events_survive_a_nats_crash_and_are_handled_exactly_once(
    sites: Any, make_settings: Any, databases: Any, tmp_path: Path
) -> None:
    # This test owns its nats-server (it kills it), whatever MERCATO_TEST_NATS_URL says.
    store = tmp_path / "nats-store"
    server = EmbeddedNats(store)
    url = server.start()
    port = server.port
    try:
        settings = make_settings(events={"nats_url": url})
        settings = _with_database(settings, await databases.create_migrated(settings))
        recorder = Recorder(("survivor", ("test.happened",), None))
        site = await start_with(sites, settings, recorder)
        ids = await emit_events(site, 40)
        assert server.process is not None
        server.process.send_signal(signal.SIGKILL)
        server.process.wait()
        server.process = None
        ids += await emit_events(site, 40)  # NATS is down: these wait in the outbox
        await asyncio.sleep(1.0)
        server = EmbeddedNats(store, port=port)
        server.start()
        ids += await emit_events(site, 40)
        await wait_for(lambda: len(recorder.calls["survivor"]) == 120, timeout=60)
        await asyncio.sleep(1.0)
        assert recorder.calls["survivor"] == Counter({event_id: 1 for event_id in ids})
        assert await outbox_size(site) == 0
    finally:
        await sites.close()
        server.stop()


def test_event_types_must_be_domain_dot_event() -> None:
    assert Event(type="proposal.accepted").type == "proposal.accepted"
    for bad in ("proposal", "Proposal.accepted", "a.b.c", "live.message", "proposal.", ""):
        with pytest.raises(ValueError, match=r"domain\.event"):
            Event(type=bad)


def test_handler_ids_are_checked() -> None:
    async def handle(event: Event, session: Any) -> None:
        return None

    with pytest.raises(ValueError, match="letters"):
        EventHandler(id="has.dot", events=("a.b",), handle=handle)
    with pytest.raises(ValueError, match="no events"):
        EventHandler(id="ok", events=(), handle=handle)


async def test_web_process_without_relay_wakes_the_workers_relay(
    sites: Any, migrated_settings: Any, make_settings: Any
) -> None:
    import msgspec

    # A long sweep: only the wake-up message can explain a quick delivery.
    slow = msgspec.structs.replace(
        migrated_settings,
        events=msgspec.structs.replace(migrated_settings.events, relay_sweep_seconds=60.0),
    )
    recorder = Recorder(("woken", ("test.happened",), None))
    worker = await start_with(sites, slow, recorder)
    web = await sites.start(slow, background=False)
    await asyncio.sleep(0.3)  # let the worker's first sweep pass
    [event_id] = await emit_events(web, 1)
    await wait_for(lambda: event_id in recorder.calls["woken"], timeout=5)
    assert worker.events.relay is not None
    assert web.events.relay is None


async def test_one_failing_event_in_a_batch_does_not_undo_the_others(
    sites: Any, migrated_settings: Any
) -> None:
    def reject_the_third(event: Event) -> None:
        if event.payload["i"] == 3:
            raise RuntimeError("this one is bad")

    recorder = Recorder(("picky", ("test.happened",), reject_the_third))
    site = await start_with(sites, migrated_settings, recorder)
    async with site.db.transaction() as session:  # one commit: fetched as one batch
        events = [emit(session, Event(type="test.happened", payload={"i": i})) for i in range(10)]
    good = [event.id for event in events if event.payload["i"] != 3]
    await wait_for(lambda: len(recorder.calls["picky"]) == 9)
    await asyncio.sleep(1.0)
    assert recorder.calls["picky"] == Counter({event_id: 1 for event_id in good})
    async with site.db.transaction() as session:
        markers = set(await session.scalars(select(ProcessedEvent.event_id)))
    assert markers == set(good)


async def test_sqlite_readers_do_not_wait_for_a_writer(migrated_settings: Any) -> None:
    site = Site(migrated_settings)
    try:
        if not site.db.sqlite:
            pytest.skip("SQLite's database-wide write lock only")
        async with site.db.transaction() as writer:
            emit(writer, Event(type="test.pending"))
            await writer.flush()  # the write lock is now held
            async with site.db.reading() as reader:
                count = await asyncio.wait_for(
                    reader.scalar(select(func.count()).select_from(OutboxEvent)), 2
                )
        assert count == 0  # the uncommitted row is invisible, and the read did not block
    finally:
        await site.db.dispose()


async def test_nats_url_may_list_several_cluster_servers(
    sites: Any, make_settings: Any, databases: Any, nats_url: str
) -> None:
    settings = make_settings(events={"nats_url": f"nats://127.0.0.1:9, {nats_url}"})
    settings = _with_database(settings, await databases.create_migrated(settings))
    recorder = Recorder(("clustered", ("test.happened",), None))
    site = await start_with(sites, settings, recorder)
    [event_id] = await emit_events(site, 1)
    await wait_for(lambda: event_id in recorder.calls["clustered"])
