"""nats-server killed and restarted in the middle of activity: the outbox keeps the events
made while it is down, and once it is back every notification is made exactly once; an open
socket keeps working and receives the ones made after the restart; chat catches up with
``after=``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import websockets

from mercato import create_app
from mercato.core.events.embedded import EmbeddedNats
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _with_database
from tests.e2e.conftest import LiveServer, free_port
from tests.integration.test_accounts_api import register
from tests.marketplace_helpers import API, bid, post_project


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.stop)


async def notifications(http: httpx.AsyncClient, who: Any) -> list[dict[str, Any]]:
    return list(
        (await http.get(f"{API}/notifications", headers=who.auth, params={"limit": 100})).json()["items"]
    )


async def wait_for_count(http: httpx.AsyncClient, who: Any, count: int, timeout: float = 30.0) -> list[Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await notifications(http, who)
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_nothing_lost_nothing_doubled_when_nats_restarts(
    tmp_path: Path, make_settings: MakeSettings, databases: Databases, nats_server: EmbeddedNats
) -> None:
    port = free_port()
    settings = make_settings(
        site={"base_url": f"http://127.0.0.1:{port}"},
        accounts={"require_verified_email": False, "registrations_per_hour": 1000},
        events={"nats_url": nats_server.url, "stream": "RESTART", "subject_prefix": "restart"},
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    async with (
        LiveServer(create_app(site=Site(settings)), port=port, access_log=False) as server,
        httpx.AsyncClient(base_url=server.url, timeout=20) as http,
    ):
        market = SimpleNamespace(client=http)
        owner = await register(http, "owner@example.com", name="Owner", roles=("client",))
        devs = [
            await register(http, f"dev{n}@example.com", name=f"Dev {n}", roles=("developer",))
            for n in range(6)
        ]
        projects = [await post_project(market, owner, title=f"Project {n}") for n in range(6)]  # type: ignore[arg-type]
        socket_url = server.url.replace("http://", "ws://") + "/ws"
        headers = {"Authorization": f"Bearer {owner.access}", "Origin": server.url}
        async with websockets.connect(socket_url, additional_headers=headers) as socket:
            assert json.loads(await asyncio.wait_for(socket.recv(), 10))["type"] == "ready"
            for n in range(3):
                await bid(market, devs[n], projects[n])  # type: ignore[arg-type]
            assert len(await wait_for_count(http, owner, 3)) == 3

            await asyncio.to_thread(nats_server.stop)  # NATS is gone; the site keeps taking bids
            for n in range(3, 6):
                await bid(market, devs[n], projects[n])  # type: ignore[arg-type]
            await asyncio.sleep(1.0)
            assert len(await notifications(http, owner)) == 3  # waiting in the outbox

            restarted = EmbeddedNats(tmp_path / "nats", port=int(nats_server.url.rsplit(":", 1)[1]))
            await asyncio.to_thread(restarted.start)
            try:
                found = await wait_for_count(http, owner, 6)
                titles = sorted(n["title"] for n in found)
                assert titles == sorted(f"New proposal on “Project {n}”" for n in range(6)), titles
                await asyncio.sleep(2.0)  # redeliveries, if any, had their chance
                assert len(await notifications(http, owner)) == 6  # none doubled
                # the socket stayed open and its subscription came back with the connection: it
                # was told of the bids made while NATS was down, once they were handled
                later = {f"New proposal on “Project {n}”" for n in range(3, 6)}
                pushed: set[str] = set()
                while not later <= pushed:
                    message = json.loads(await asyncio.wait_for(socket.recv(), 20))
                    if message["type"] == "notification":
                        pushed.add(message["notification"]["title"])
            finally:
                await asyncio.to_thread(restarted.stop)
