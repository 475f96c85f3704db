"""Live fan-out at scale: 1,000 WebSocket connections (``MERCATO_BENCH_SOCKETS``) split over
two app instances (two ``mercato run`` processes on one database and one NATS), held by
``MERCATO_BENCH_USERS`` people (200: five pages each).

Measured and printed (no timed assertions):

* chat fan-out: a message sent over HTTP through instance A, until it reaches each of the
  recipient's five sockets (on both instances): p50/p99 over ``MERCATO_BENCH_MESSAGES`` (200);
* notification latency: from the commit of a domain event (a bid's response has returned, so
  its transaction committed) until the notification reaches the client's socket, through the
  outbox, JetStream, the notifications consumer and the live fan-out: p50/p99 over 50 bids;
* memory per idle connection: the two servers' resident memory with all sockets open, less
  before, divided by the number of sockets.

Notifications are measured first, on a quiet site: chat messages are events too, and the
notifications consumer works through them in order (one transaction per fetch).

Every message must reach every socket of its recipient, and every bid its notification.
Run it on PostgreSQL for the issue's numbers::

    MERCATO_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
    MERCATO_TEST_NATS_URL=nats://127.0.0.1:4222 pytest tests/benchmarks/test_bench_live.py -s
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psutil
import websockets

from tests.benchmarks._bench import ms, percentile, report
from tests.conftest import Databases, MakeSettings
from tests.integration.test_accounts_api import PASSWORD, Person, register
from tests.integration.test_cli import Server, clean_env, free_port, init_site, servers  # noqa: F401
from tests.marketplace_helpers import API, bid, post_project

SOCKETS = int(os.environ.get("MERCATO_BENCH_SOCKETS", 1_000))
USERS = int(os.environ.get("MERCATO_BENCH_USERS", 200))
MESSAGES = int(os.environ.get("MERCATO_BENCH_MESSAGES", 200))
BIDS = int(os.environ.get("MERCATO_BENCH_BIDS", 50))


def rss(server: Server) -> int:
    """Resident memory of a server and its children (uvicorn's workers), in bytes."""
    process = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])


class Listener:
    """One open socket: it stamps each message it receives with the moment it arrived."""

    def __init__(self, socket: Any, user: Person) -> None:
        self.socket, self.user = socket, user
        self.arrived: dict[str, float] = {}
        self.task = asyncio.create_task(self.run())

    async def run(self) -> None:
        async for raw in self.socket:
            moment = time.perf_counter()
            message = json.loads(raw)
            if message["type"] == "message":
                self.arrived[message["message"]["id"]] = moment
            elif message["type"] == "notification":
                self.arrived[message["notification"]["title"]] = moment


async def test_thousand_sockets_over_two_instances(
    tmp_path: Path,
    servers: list[Server],  # noqa: F811
    make_settings: MakeSettings,
    databases: Databases,
    nats_url: str,
) -> None:
    site = init_site(tmp_path)
    database_url = await databases.create_migrated(make_settings())
    stream = f"BENCH_LIVE_{uuid.uuid4().hex[:6].upper()}"
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"
    instances: list[Server] = []
    for name, port in zip(("a", "b"), ports, strict=True):
        env = clean_env(
            MERCATO_SITE__BASE_URL=public,
            MERCATO_SITE__SECRET_KEY="bench-live-" + "x" * 40,
            MERCATO_ACCOUNTS__REQUIRE_VERIFIED_EMAIL="false",
            MERCATO_ACCOUNTS__REGISTRATIONS_PER_HOUR="100000",
            MERCATO_DATABASE__URL=database_url,
            MERCATO_EVENTS__NATS_URL=nats_url,
            MERCATO_EVENTS__STREAM=stream,
            MERCATO_EVENTS__SUBJECT_PREFIX=stream.lower(),
            MERCATO_LOGGING__LEVEL="WARNING",
        )
        server = Server(
            ["run", "--port", str(port)], cwd=site, port=port, log=tmp_path / f"{name}.log", env=env
        )
        servers.append(server)
        instances.append(server)
    for server in instances:
        server.wait_healthy()
    a, b = instances
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=a.base_url, timeout=60, limits=limits) as http:
        gate = asyncio.Semaphore(8)

        async def person(n: int) -> Person:
            async with gate:
                return await register(
                    http,
                    f"live{n}@example.com",
                    password=PASSWORD,
                    name=f"Person {n}",
                    roles=("client", "developer"),
                )

        people = await asyncio.gather(*(person(n) for n in range(USERS)))
        before = rss(a) + rss(b)
        listeners: dict[str, list[Listener]] = {p.id: [] for p in people}

        async def open_socket(index: int) -> None:
            who = people[index % USERS]
            server = instances[index % 2]
            socket = await websockets.connect(
                server.base_url.replace("http://", "ws://") + "/ws",
                max_queue=None,
                additional_headers={"Authorization": f"Bearer {who.access}", "Origin": public},
            )
            assert json.loads(await socket.recv())["type"] == "ready"
            listeners[who.id].append(Listener(socket, who))

        started = time.perf_counter()
        for chunk in range(0, SOCKETS, 100):
            await asyncio.gather(*(open_socket(i) for i in range(chunk, min(chunk + 100, SOCKETS))))
        opened = time.perf_counter() - started
        await asyncio.sleep(2.0)
        during = rss(a) + rss(b)

        # -- notification latency --------------------------------------------------------------------
        market = SimpleNamespace(client=http)
        owner, bidders = people[0], people[1 : BIDS + 1]
        projects = [
            await post_project(market, owner, title=f"Bench project {n}") for n in range(len(bidders))
        ]  # type: ignore[arg-type]
        committed: dict[str, float] = {}
        for n, (bidder, project) in enumerate(zip(bidders, projects, strict=True)):
            await bid(market, bidder, project)  # type: ignore[arg-type]
            committed[f"New proposal on “Bench project {n}”"] = time.perf_counter()
            await asyncio.sleep(0.05)
        await asyncio.sleep(5.0)
        notified = []
        unnotified = 0
        for title, moment in committed.items():
            arrivals = [lst.arrived[title] for lst in listeners[owner.id] if title in lst.arrived]
            if arrivals:
                notified.append(min(arrivals) - moment)
            else:
                unnotified += 1

        # -- chat fan-out ------------------------------------------------------------------------
        pairs = [(people[i], people[(i + 1) % USERS]) for i in range(USERS)]
        conversations: dict[tuple[str, str], str] = {}
        for sender, recipient in pairs[: min(MESSAGES, USERS)]:
            talk = await http.post(
                f"{API}/conversations", headers=sender.auth, json={"user_id": recipient.id}
            )
            conversations[(sender.id, recipient.id)] = talk.json()["id"]
        fanout: list[float] = []
        sent_at: dict[str, tuple[float, str]] = {}
        for n in range(MESSAGES):
            sender, recipient = pairs[n % len(conversations)]
            t0 = time.perf_counter()
            response = await http.post(
                f"{API}/conversations/{conversations[(sender.id, recipient.id)]}/messages",
                headers=sender.auth,
                json={"body": f"Message {n}"},
            )
            assert response.status_code == 201, response.text
            sent_at[response.json()["id"]] = (t0, recipient.id)
            await asyncio.sleep(0.02)
        await asyncio.sleep(3.0)
        missing = 0
        for message_id, (t0, recipient_id) in sent_at.items():
            for listener in listeners[recipient_id]:
                if message_id in listener.arrived:
                    fanout.append(listener.arrived[message_id] - t0)
                else:
                    missing += 1

        for group in listeners.values():
            for listener in group:
                await listener.socket.close()
                listener.task.cancel()

    per_socket = (during - before) / SOCKETS
    report(
        "Live fan-out: two instances, one database, one NATS",
        [
            f"sockets: {SOCKETS} ({USERS} people, {SOCKETS // USERS} pages each), opened in {opened:.1f} s",
            f"chat fan-out (HTTP send → each of the recipient's sockets), {len(fanout)} deliveries: "
            f"p50 {ms(percentile(fanout, 50))}, p99 {ms(percentile(fanout, 99))}; missing {missing}",
            f"notification (bid committed → client's socket), {len(notified)} bids: "
            f"p50 {ms(percentile(notified, 50))}, p99 {ms(percentile(notified, 99))}; missing {unnotified}",
            f"memory per idle socket: {per_socket / 1024:,.1f} KiB "
            f"(servers {before / 2**20:,.0f} MiB → {during / 2**20:,.0f} MiB)",
            "targets: fan-out p99 < 50 ms; notification p99 < 200 ms",
        ],
    )
    assert missing == 0
    assert unnotified == 0
