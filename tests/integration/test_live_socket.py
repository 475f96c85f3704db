"""The live WebSocket ``/ws`` on a real server (uvicorn on loopback) with a real WebSocket
client: notifications arrive the moment their event is handled; strangers and other sites'
pages are turned away; pings are answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import websockets

from mercato import create_app
from mercato.core.site import Site
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.e2e.conftest import LiveServer, free_port
from tests.integration.test_accounts_api import Person, register
from tests.marketplace_helpers import API, bid, post_project


@pytest.fixture
async def server(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[LiveServer]:
    port = free_port()
    settings = make_settings(
        site={"base_url": f"http://127.0.0.1:{port}"},
        accounts={"require_verified_email": False, "registrations_per_hour": 1000},
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    async with LiveServer(create_app(site=Site(settings)), port=port, access_log=False) as live:
        yield live
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/ws"


async def next_message(socket: Any, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] == kind:
            return dict(message)


async def test_a_notification_reaches_the_open_socket_at_once(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        owner = await register(http, "owner@example.com", name="Olive Owner", roles=("client",))
        dev = await register(http, "dev@example.com", name="Dev Eloper", roles=("developer",))
        headers = {"Authorization": f"Bearer {owner.access}", "Origin": server.url}
        async with websockets.connect(ws_url(server), additional_headers=headers) as socket:
            await next_message(socket, "ready")
            await socket.send('{"type": "ping"}')
            assert await next_message(socket, "pong")
            project = await post_project(SimpleNamespace(client=http), owner, title="Live project")  # type: ignore[arg-type]
            await bid(SimpleNamespace(client=http), dev, project)  # type: ignore[arg-type]
            pushed = await next_message(socket, "notification")
            assert pushed["notification"]["title"] == "New proposal on “Live project”"
            assert pushed["unread"] == 1
            read_all = await http.post(f"{API}/notifications/read-all", headers=owner.auth)
            assert read_all.status_code == 204
            assert (await next_message(socket, "notifications_read"))["unread"] == 0


async def test_strangers_and_other_sites_are_turned_away(server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        person: Person = await register(http, "someone@example.com")
    for headers, code in (
        ({"Origin": server.url}, 4401),
        ({"Authorization": f"Bearer {person.access}", "Origin": "https://evil.example"}, 4403),
        ({"Authorization": "Bearer forged.token.here", "Origin": server.url}, None),
    ):
        with pytest.raises(
            (websockets.exceptions.ConnectionClosed, websockets.exceptions.InvalidStatus)
        ) as caught:
            async with websockets.connect(ws_url(server), additional_headers=headers) as socket:
                await asyncio.wait_for(socket.recv(), 5)
        if code is not None:
            assert isinstance(caught.value, websockets.exceptions.ConnectionClosed)
            assert caught.value.rcvd is not None
            assert caught.value.rcvd.code == code
