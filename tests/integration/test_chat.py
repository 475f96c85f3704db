"""Chat: conversations between two people, messages with safe Markdown, unread counts and read
receipts, edits within the window, blocks, a plugin refusing content (``validate_message``),
size and rate limits; live over a real WebSocket: messages, typing, catching up after a
reconnect, and a plugin's own socket messages (``register_socket_handlers``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

import httpx
import pytest
import websockets

from mercato import create_app, hookimpl
from mercato.core.db import utcnow
from mercato.core.site import Site
from mercato.core.socket import SocketHandler
from mercato.plugins.chat.models import Message
from tests.conftest import Databases, MakeSettings, _delete_streams, _with_database
from tests.e2e.conftest import LiveServer, free_port
from tests.integration.test_accounts_api import register
from tests.marketplace_helpers import (
    API,
    App,
    Apps,
    Person,
    assert_problem,
    client,
    developer,
    open_market,
    set_row,
)


class NoPayPal:
    """A plugin that refuses messages asking to be paid outside the platform."""

    @hookimpl
    def validate_message(self, site: Any, sender_id: Any, conversation_id: Any, body: str) -> str | None:
        if "paypal" in body.lower():
            return "Keep payments on the platform: they are protected by escrow."
        return None

    changes: ClassVar[list[tuple[str, bool]]] = []

    @hookimpl
    async def on_presence_changed(self, site: Any, user_id: Any, online: bool) -> None:
        NoPayPal.changes.append((str(user_id), online))

    @hookimpl
    def register_socket_handlers(self, site: Any) -> list[SocketHandler]:
        async def echo(user_id: Any, message: dict[str, Any]) -> dict[str, Any]:
            return {"type": "echoed", "text": message.get("text"), "user_id": str(user_id)}

        return [SocketHandler("echo", echo)]


@pytest.fixture
async def apps(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[Apps]:
    factory = Apps(make_settings, databases)
    try:
        yield factory
    finally:
        await factory.close()


@pytest.fixture
async def app(apps: Apps) -> App:
    return await open_market(apps)


async def talk(app: App, a: Person, b: Person, **extra: Any) -> dict[str, Any]:
    started = await app.client.post(f"{API}/conversations", headers=a.auth, json={"user_id": b.id, **extra})
    assert started.status_code == 200, started.text
    return dict(started.json())


async def say(app: App, who: Person, conversation: dict[str, Any], body: str) -> Any:
    return await app.client.post(
        f"{API}/conversations/{conversation['id']}/messages", headers=who.auth, json={"body": body}
    )


async def test_two_people_talk_and_only_they_can_read_it(app: App) -> None:
    ada, bob = await client(app, "Ada"), await developer(app, "Bob")
    conversation = await talk(app, ada, bob)
    assert conversation["with_user"]["display_name"] == "Bob"
    again = await talk(app, ada, bob)
    assert again["id"] == conversation["id"]  # one per pair and subject
    sent = await say(
        app, ada, conversation, "Hi **Bob**, see [the brief](https://example.com/brief) <script>x</script>"
    )
    assert sent.status_code == 201, sent.text
    html = sent.json()["html"]
    assert "<strong>Bob</strong>" in html
    assert "<script>" not in html
    assert 'rel="' in html  # links open safely
    bobs = (await app.client.get(f"{API}/conversations", headers=bob.auth)).json()
    assert [(c["with_user"]["display_name"], c["unread"]) for c in bobs] == [("Ada", 1)]
    read = await app.client.post(f"{API}/conversations/{conversation['id']}/read", headers=bob.auth)
    assert read.status_code == 204
    assert (await app.client.get(f"{API}/conversations", headers=bob.auth)).json()[0]["unread"] == 0
    adas = (await app.client.get(f"{API}/conversations/{conversation['id']}", headers=ada.auth)).json()
    assert adas["other_read_at"] is not None  # the read receipt
    # strangers see nothing and write nothing
    eve = await client(app, "Eve")
    url = f"{API}/conversations/{conversation['id']}"
    assert_problem(await app.client.get(url, headers=eve.auth), 404)
    assert_problem(await app.client.get(f"{url}/messages", headers=eve.auth), 404)
    assert_problem(await say(app, eve, conversation, "Hello?"), 404)
    assert_problem(await app.client.post(f"{url}/read", headers=eve.auth), 404)
    message_id = sent.json()["id"]
    assert_problem(
        await app.client.patch(f"{API}/messages/{message_id}", headers=eve.auth, json={"body": "x"}), 404
    )
    assert (await app.client.get(f"{API}/conversations", headers=eve.auth)).json() == []
    assert_problem(
        await app.client.post(f"{API}/conversations", headers=ada.auth, json={"user_id": ada.id}),
        400,
        field="user_id",
    )


async def test_limits_edits_blocks_and_a_plugin_refusing_content(apps: Apps) -> None:
    app = await apps.open(
        await apps.settings(accounts={"require_verified_email": False, "registrations_per_hour": 1000}),
        extra=[("no-paypal", NoPayPal())],
    )
    ada = await register(app.client, "ada@example.com", name="Ada", roles=("client",))
    bob = await register(app.client, "bob@example.com", name="Bob", roles=("developer",))
    conversation = await talk(app, ada, bob)
    too_long = await say(app, ada, conversation, "x" * 5001)
    problem = assert_problem(too_long, 400, field="body")
    assert "5,000" in problem["errors"][0]["message"]
    assert_problem(await say(app, ada, conversation, "   "), 400, field="body")
    refused = await say(app, ada, conversation, "Pay me on PayPal instead, cheaper")
    assert "escrow" in assert_problem(refused, 400, field="body")["errors"][0]["message"]
    sent = (await say(app, ada, conversation, "First draft")).json()
    edited = await app.client.patch(
        f"{API}/messages/{sent['id']}", headers=ada.auth, json={"body": "Second draft"}
    )
    assert edited.status_code == 200
    assert edited.json()["edited_at"]
    assert_problem(
        await app.client.patch(f"{API}/messages/{sent['id']}", headers=bob.auth, json={"body": "mine"}), 403
    )
    await set_row(app, Message, sent["id"], created_at=utcnow() - timedelta(minutes=16))
    assert_problem(await app.client.delete(f"{API}/messages/{sent['id']}", headers=ada.auth), 409)
    fresh = (await say(app, ada, conversation, "Oops")).json()
    assert (await app.client.delete(f"{API}/messages/{fresh['id']}", headers=ada.auth)).status_code == 204
    page = (
        await app.client.get(f"{API}/conversations/{conversation['id']}/messages", headers=bob.auth)
    ).json()
    assert [(m["body"], m["deleted"]) for m in page["items"]] == [("Second draft", False), ("", True)]
    # blocks work both ways, until lifted
    assert (await app.client.put(f"{API}/users/{ada.id}/block", headers=bob.auth)).status_code == 204
    assert_problem(await say(app, ada, conversation, "Still there?"), 403)
    assert_problem(await say(app, bob, conversation, "Bye"), 403)
    assert (await app.client.get(f"{API}/conversations", headers=ada.auth)).json()[0]["blocked"] is True
    assert (await app.client.delete(f"{API}/users/{ada.id}/block", headers=bob.auth)).status_code == 204
    assert (await say(app, ada, conversation, "Back")).status_code == 201


# ---------------------------------------------------------------------------
# Live, over a real WebSocket
# ---------------------------------------------------------------------------


@pytest.fixture
async def server(make_settings: MakeSettings, databases: Databases) -> AsyncIterator[LiveServer]:
    port = free_port()
    settings = make_settings(
        site={"base_url": f"http://127.0.0.1:{port}"},
        accounts={"require_verified_email": False, "registrations_per_hour": 1000},
    )
    settings = _with_database(settings, await databases.create_migrated(settings))
    from mercato.core.plugins import build_plugin_manager

    site = Site(settings, pm=build_plugin_manager(settings, extra=[("no-paypal", NoPayPal())]))
    async with LiveServer(create_app(site=site), port=port, access_log=False) as live:
        yield live
    await _delete_streams(settings.events.nats_url, {settings.events.stream})


async def received(socket: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if message["type"] == kind:
            return dict(message)


async def _conversation_checks(
    http: httpx.AsyncClient, ada: Person, bob: Person, conversation: str, ada_socket: Any, bob_socket: Any
) -> dict[str, Any]:
    """Typing, a plugin's socket message, sending over the socket (refused, then sent), the
    message live on Bob's socket, and his read receipt on Ada's; the message Bob saw."""
    await ada_socket.send(json.dumps({"type": "typing", "conversation_id": conversation}))
    typing = await received(bob_socket, "typing")
    assert typing["user_id"] == ada.id
    await ada_socket.send(json.dumps({"type": "echo", "text": "hi"}))
    assert (await received(ada_socket, "echoed"))["text"] == "hi"
    await ada_socket.send(json.dumps({"type": "typing", "conversation_id": "not-an-id"}))
    assert (await received(ada_socket, "error"))["message"]
    await ada_socket.send(
        json.dumps({"type": "send", "conversation_id": conversation, "body": "x" * 5001, "ref": "too-long"})
    )
    refused = await received(ada_socket, "error")
    assert (refused["ref"], refused["status"]) == ("too-long", 400)
    await ada_socket.send(
        json.dumps({"type": "send", "conversation_id": conversation, "body": "Are you there?", "ref": "r1"})
    )
    sent_over_socket = await received(ada_socket, "sent")
    assert sent_over_socket["ref"] == "r1"
    first = (await received(bob_socket, "message"))["message"]
    assert first["id"] == sent_over_socket["message"]["id"]
    assert first["html"].startswith("<p>Are you there?")
    await http.post(
        f"{API}/conversations/{conversation}/read", headers=bob.auth, json={"message_id": first["id"]}
    )
    assert (await received(ada_socket, "read"))["user_id"] == bob.id
    # Bob has a page open: he is online, and his messages need no notification
    seen_by_ada = (await http.get(f"{API}/conversations/{conversation}", headers=ada.auth)).json()
    assert seen_by_ada["with_user"]["online"] is True
    return dict(first)


async def test_messages_and_typing_arrive_live_and_a_reconnect_catches_up(server: LiveServer) -> None:
    url = server.url.replace("http://", "ws://") + "/ws"
    async with httpx.AsyncClient(base_url=server.url) as http:
        ada = await register(http, "ada@example.com", name="Ada", roles=("client",))
        bob = await register(http, "bob@example.com", name="Bob", roles=("developer",))
        started = await http.post(f"{API}/conversations", headers=ada.auth, json={"user_id": bob.id})
        conversation = started.json()["id"]

        def connect(who: Person) -> Any:
            return websockets.connect(
                url, additional_headers={"Authorization": f"Bearer {who.access}", "Origin": server.url}
            )

        async with connect(ada) as ada_socket:
            await received(ada_socket, "ready")
            async with connect(bob) as bob_socket:
                await received(bob_socket, "ready")
                came = await received(ada_socket, "presence")  # Ada sees Bob arrive
                assert (came["user_id"], came["online"]) == (bob.id, True)
                assert (bob.id, True) in NoPayPal.changes
                first = await _conversation_checks(http, ada, bob, conversation, ada_socket, bob_socket)
            went = await received(ada_socket, "presence")  # ... and leave
            assert (went["user_id"], went["online"]) == (bob.id, False)
        await asyncio.sleep(0.3)  # the sockets' closing is recorded
        seen_by_ada = (await http.get(f"{API}/conversations/{conversation}", headers=ada.auth)).json()
        assert seen_by_ada["with_user"]["online"] is False
        assert seen_by_ada["with_user"]["last_seen_at"]
        # Bob is away: two messages; back, he asks for what came after the last he saw
        for text in ("One", "Two"):
            await http.post(
                f"{API}/conversations/{conversation}/messages", headers=ada.auth, json={"body": text}
            )
        missed = (
            await http.get(
                f"{API}/conversations/{conversation}/messages",
                headers=bob.auth,
                params={"after": first["id"]},
            )
        ).json()
        assert [m["body"] for m in missed["items"]] == ["One", "Two"]
        # ... and he was told of them (not of the first, which he saw live)
        for _ in range(100):
            told = (await http.get(f"{API}/notifications", headers=bob.auth)).json()["items"]
            if len(told) >= 2:
                break
            await asyncio.sleep(0.1)
        assert [(n["title"], n["body"]) for n in told] == [
            ("New message from Ada", "Two"),
            ("New message from Ada", "One"),
        ]


async def test_the_pages_start_a_conversation_from_a_contract_and_send_without_javascript(app: App) -> None:
    from tests.integration.test_accounts_security import Browser
    from tests.integration.test_milestones import hire

    deal = await hire(app)
    owner = await Browser.signed_in(app, deal.owner.email)
    contract_page = await owner.request(
        "GET", f"/contracts/{deal.contract['id']}", headers={"Accept": "text/html"}
    )
    assert 'action="/messages/start"' in contract_page.text
    started = await owner.request(
        "POST",
        "/messages/start",
        data={
            "csrf_token": owner.csrf(),
            "user_id": deal.dev.id,
            "subject_type": "contract",
            "subject_id": deal.contract["id"],
        },
    )
    assert started.status_code == 303
    url = started.headers["location"]
    empty = await owner.request("GET", url, headers={"Accept": "text/html"})
    assert "Say hello to" in empty.text
    too_long = await owner.request("POST", url, data={"csrf_token": owner.csrf(), "body": "x" * 5001})
    assert too_long.status_code == 400
    assert "5,000 characters" in too_long.text
    sent = await owner.request("POST", url, data={"csrf_token": owner.csrf(), "body": "Hello *there*"})
    assert sent.status_code == 303
    dev = await Browser.signed_in(app, deal.dev.email)
    listing = await dev.request("GET", "/messages", headers={"Accept": "text/html"})
    assert "Hello *there*" in listing.text  # the preview, as written
    page = await dev.request("GET", url, headers={"Accept": "text/html"})
    assert "<em>there</em>" in page.text
    stranger = await Browser.signed_in(app, (await client(app, "Eve")).email)
    assert (await stranger.request("GET", url)).status_code == 404
    # the contract's page shows its conversation, to both parties
    for who in (owner, dev):
        shown = await who.request("GET", f"/contracts/{deal.contract['id']}", headers={"Accept": "text/html"})
        assert "Conversation with" in shown.text
        assert "<em>there</em>" in shown.text
        assert f'href="{url}"' in shown.text


async def test_files_go_with_a_message_and_only_the_two_people_get_them(app: App) -> None:
    from tests.integration.test_accounts_api import png_bytes

    ada, bob = await client(app, "Ada"), await developer(app, "Bob")
    conversation = await talk(app, ada, bob)
    url = f"{API}/conversations/{conversation['id']}/files"
    uploaded = await app.client.post(
        url, headers=ada.auth, files={"file": ("mock-up.png", png_bytes(), "image/png")}
    )
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    assert_problem(await app.client.get(file["url"], headers=bob.auth), 404)  # not sent yet
    bad = await app.client.post(
        url, headers=ada.auth, files={"file": ("notes.png", b"not a png", "image/png")}
    )
    assert_problem(bad, 400, field="file")
    others = await app.client.post(
        f"{API}/conversations/{conversation['id']}/messages", headers=bob.auth, json={"files": [file["id"]]}
    )
    assert_problem(others, 400, field="files")  # Bob cannot send Ada's file
    sent = await app.client.post(
        f"{API}/conversations/{conversation['id']}/messages", headers=ada.auth, json={"files": [file["id"]]}
    )
    assert sent.status_code == 201, sent.text
    assert [f["filename"] for f in sent.json()["files"]] == ["mock-up.png"]
    got = await app.client.get(file["url"], headers=bob.auth)
    assert got.status_code == 200
    assert got.content == png_bytes()
    assert got.headers["content-disposition"].startswith("attachment")
    page = (
        await app.client.get(f"{API}/conversations/{conversation['id']}/messages", headers=bob.auth)
    ).json()
    assert page["items"][-1]["files"][0]["id"] == file["id"]
    eve = await client(app, "Eve")
    assert_problem(await app.client.get(file["url"], headers=eve.auth), 404)
    assert_problem(
        await app.client.post(url, headers=eve.auth, files={"file": ("x.png", png_bytes(), "image/png")}), 404
    )
