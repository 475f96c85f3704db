"""Two app instances (separate ``mercato run`` processes) on one database and one NATS: a chat
message sent through instance A reaches a socket held by instance B, and so does a
notification made from an event (handled once, by whichever instance's consumer took it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import websockets

from tests.conftest import OFF_BY_DEFAULT, Databases, MakeSettings
from tests.integration.test_accounts_api import PASSWORD, Person, register
from tests.integration.test_cli import Server, clean_env, free_port, init_site, servers  # noqa: F401
from tests.marketplace_helpers import API, bid, post_project


async def received(socket: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 15))
        if message["type"] == kind:
            return dict(message)


async def test_messages_and_notifications_cross_instances(
    tmp_path: Path,
    servers: list[Server],  # noqa: F811
    make_settings: MakeSettings,
    databases: Databases,
    nats_url: str,
) -> None:
    site = init_site(tmp_path)
    settings = make_settings()
    database_url = await databases.create_migrated(settings)
    stream = f"TEST_SCALE_{uuid.uuid4().hex[:8].upper()}"
    secret = uuid.uuid4().hex * 2  # one site: both instances sign and check tokens alike
    started: list[Server] = []
    ports = [free_port(), free_port()]
    public = f"http://127.0.0.1:{ports[0]}"  # one site: both instances serve the same public address
    for name, port in zip(("a", "b"), ports, strict=True):
        env = clean_env(
            MERCATO_SITE__BASE_URL=public,
            MERCATO_SITE__SECRET_KEY=secret,
            MERCATO_ACCOUNTS__REQUIRE_VERIFIED_EMAIL="false",
            MERCATO_DATABASE__URL=database_url,
            MERCATO_EVENTS__NATS_URL=nats_url,
            MERCATO_EVENTS__STREAM=stream,
            MERCATO_EVENTS__SUBJECT_PREFIX=f"t{stream.lower()}",
            # as the database was migrated: without the plugins tests leave off
            MERCATO_PLUGINS__DISABLED=json.dumps(list(OFF_BY_DEFAULT)),
        )
        server = Server(
            ["run", "--port", str(port)], cwd=site, port=port, log=tmp_path / f"{name}.log", env=env
        )
        servers.append(server)
        started.append(server)
    for server in started:
        server.wait_healthy()
    a, b = started
    async with httpx.AsyncClient(base_url=a.base_url, timeout=10) as http:
        ada = await register(http, "ada@example.com", password=PASSWORD, name="Ada", roles=("client",))
        bob = await register(http, "bob@example.com", password=PASSWORD, name="Bob", roles=("developer",))

        me_on_b = await http.get(f"{b.base_url}{API}/me", headers=ada.auth)  # tokens work on every instance
        assert me_on_b.status_code == 200, me_on_b.text

        def on_b(who: Person) -> Any:
            return websockets.connect(
                b.base_url.replace("http://", "ws://") + "/ws",
                additional_headers={"Authorization": f"Bearer {who.access}", "Origin": b.base_url},
            )

        async with on_b(bob) as bob_socket, on_b(ada) as ada_socket:
            for socket in (bob_socket, ada_socket):
                await received(socket, "ready")
            started_chat = await http.post(
                f"{API}/conversations",
                headers=ada.auth,
                json={"user_id": bob.id, "message": "Hello from instance A"},
            )
            assert started_chat.status_code == 200, started_chat.text
            message = await received(bob_socket, "message")
            assert message["message"]["body"] == "Hello from instance A"
            market = SimpleNamespace(client=http)
            project = await post_project(market, ada, title="Scale-out project")  # type: ignore[arg-type]
            await bid(market, bob, project)  # type: ignore[arg-type]
            note = await received(ada_socket, "notification")
            assert note["notification"]["title"] == "New proposal on “Scale-out project”"
        await asyncio.sleep(1.0)  # both instances' consumers had their chance
        listed = (await http.get(f"{API}/notifications", headers=ada.auth)).json()
        assert [n["title"] for n in listed["items"]] == ["New proposal on “Scale-out project”"]  # once
    for server in started:
        assert "Traceback" not in server.output, server.output[-3000:]
