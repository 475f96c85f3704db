"""The sandbox's webhooks over real HTTP: ``mercato run`` serving, its own background timers
delivering signed webhooks to its own endpoint, and milestones settling from them."""

from __future__ import annotations

import asyncio
import types
from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_accounts_api import PASSWORD, register
from tests.integration.test_cli import Server, clean_env, free_port, init_site, servers  # noqa: F401
from tests.marketplace_helpers import API, bid, post_project


async def wait_for_status(http: httpx.AsyncClient, contract_id: str, who: Any, index: int,
                          status: str) -> None:
    for _ in range(100):
        contract = (await http.get(f"{API}/contracts/{contract_id}", headers=who.auth)).json()
        if contract["milestones"][index]["status"] == status:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"milestone {index} is {contract['milestones'][index]['status']}, not {status}")


async def test_pending_cards_settle_by_webhook(tmp_path: Path, servers: list[Server]) -> None:  # noqa: F811
    site = init_site(tmp_path)
    port = free_port()
    env = clean_env(
        MERCATO_SITE__BASE_URL=f"http://127.0.0.1:{port}",
        MERCATO_ACCOUNTS__REQUIRE_VERIFIED_EMAIL="false",
        MERCATO_PLUGINS__SANDBOX_PAYMENTS__CONFIRM_DELAY_SECONDS="0.2",
    )
    server = Server(["run", "--port", str(port)], cwd=site, port=port, log=tmp_path / "run.log", env=env)
    servers.append(server)
    server.wait_healthy()
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        market = types.SimpleNamespace(client=http)
        owner = await register(http, "owner@example.com", password=PASSWORD, roles=("client",))
        dev = await register(http, "dev@example.com", password=PASSWORD, roles=("developer",))
        project = await post_project(market, owner)  # type: ignore[arg-type]
        plan = [{"title": "One", "amount": 10_000}, {"title": "Two", "amount": 20_000}]
        proposal = await bid(market, dev, project, amount=30_000, milestones=plan)  # type: ignore[arg-type]
        accepted = await http.post(f"{API}/proposals/{proposal['id']}/accept", headers=owner.auth)
        contract_id = accepted.json()["contract_id"]
        contract = (await http.get(f"{API}/contracts/{contract_id}", headers=owner.auth)).json()
        first, second = (m["id"] for m in contract["milestones"])

        later_ok = await http.post(f"{API}/milestones/{first}/fund", headers=owner.auth,
                                   json={"payment_method": "4000 0000 0000 3220"})
        assert later_ok.json()["status"] == "funding", later_ok.text
        await wait_for_status(http, contract_id, owner, 0, "funded")

        later_declined = await http.post(f"{API}/milestones/{second}/fund", headers=owner.auth,
                                         json={"payment_method": "4000 0000 0000 0341"})
        assert later_declined.json()["status"] == "funding", later_declined.text
        await wait_for_status(http, contract_id, owner, 1, "pending")

    assert "webhook applied" in server.output
    assert "Traceback" not in server.output, server.output[-3000:]
