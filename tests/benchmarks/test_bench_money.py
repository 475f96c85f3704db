"""Money through the API: milestone fund → submit → approve cycles by concurrent clients.

The issue's scenario: 1,000 cycles (``MERCATO_BENCH_CYCLES``) by 20 clients at once
(``MERCATO_BENCH_CLIENTS``), each with a developer of their own, through the REST API of a site
served by uvicorn in this process (the sandbox's webhooks reach it there too). Each client's
cycles run one after another; each cycle is three requests: the client funds with a test card
(with an ``Idempotency-Key``), the developer submits, the client approves.

Printed: cycles per second, p50/p95/p99 of each request and of the whole cycle, and the
ledger checked afterwards: ``Ledger.verify()`` finds nothing, every entry sums to zero, every
contract's escrow is empty, and the developers hold exactly what was released less the 10% fee.
Run it on PostgreSQL for the issue's numbers::

    MERCATO_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
    MERCATO_TEST_NATS_URL=nats://127.0.0.1:4222 pytest tests/benchmarks/test_bench_money.py -s
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any

import httpx
from sqlalchemy import func, select

from mercato import create_app
from mercato.core.ledger.models import LedgerAccount, LedgerEntry, Purpose
from mercato.core.ledger.services import Ledger
from mercato.core.site import Site
from tests.benchmarks._bench import ms, percentile, rate, report
from tests.conftest import Databases, MakeSettings, _with_database
from tests.e2e.conftest import LiveServer, free_port

CYCLES = int(os.environ.get("MERCATO_BENCH_CYCLES", 1_000))
CLIENTS = int(os.environ.get("MERCATO_BENCH_CLIENTS", 20))
AMOUNT = 10_000
PER_PROPOSAL = 20
"""The most milestones one proposal may plan."""
PASSWORD = "correct horse battery staple 42"
RAISED = {"require_verified_email": False, "registrations_per_hour": 10_000,
          "login_attempts_per_minute": 10_000, "login_attempts_per_account": 10_000}


async def register(http: httpx.AsyncClient, role: str) -> dict[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
    response = await http.post("/api/v1/auth/register", json={
        "email": email, "password": PASSWORD, "display_name": role.title(), "roles": [role]})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


Headers = dict[str, str]


async def milestones_for(http: httpx.AsyncClient, count: int) -> tuple[Headers, Headers, list[str]]:
    """A client, a developer, and ``count`` pending milestones of contracts between them."""
    client, developer = await register(http, "client"), await register(http, "developer")
    ids: list[str] = []
    while len(ids) < count:
        size = min(PER_PROPOSAL, count - len(ids))
        project = await http.post("/api/v1/projects", headers=client, json={
            "title": "Benchmark project", "description": "Milestones to fund and approve, many of them.",
            "category": "web-backend", "skills": ["python"], "duration": "1_4_weeks",
            "budget": {"type": "fixed", "min": 100_00, "max": 10_000_00, "currency": "USD"}})
        assert project.status_code == 201, project.text
        url = f"/api/v1/projects/{project.json()['id']}/proposals"
        proposal = await http.post(url, headers=developer, json={
            "cover_letter": "I will do every milestone of this, promptly.", "amount": AMOUNT * size,
            "currency": "USD", "duration_days": 14, "answers": [],
            "milestones": [{"title": f"Part {n}", "amount": AMOUNT} for n in range(size)]})
        assert proposal.status_code == 201, proposal.text
        accepted = await http.post(f"/api/v1/proposals/{proposal.json()['id']}/accept", headers=client)
        assert accepted.status_code == 200, accepted.text
        contract = await http.get(f"/api/v1/contracts/{accepted.json()['contract_id']}", headers=client)
        ids += [m["id"] for m in contract.json()["milestones"]]
    return client, developer, ids


async def test_fund_approve_cycles_by_concurrent_clients(make_settings: MakeSettings,
                                                         databases: Databases) -> None:
    for name in ("httpx", "httpcore", "uvicorn.access"):
        logging.getLogger(name).setLevel(logging.WARNING)
    port = free_port()
    settings = make_settings(accounts=RAISED, site={"base_url": f"http://127.0.0.1:{port}"},
                             plugins={"load_entry_points": False,
                                      "sandbox_payments": {"confirm_delay_seconds": 0.1}})
    settings = _with_database(settings, await databases.create_migrated(settings))
    site = Site(settings)
    server = LiveServer(create_app(site=site), access_log=False, port=port)
    timings: dict[str, list[float]] = {"fund": [], "submit": [], "approve": [], "cycle": []}
    async with server, httpx.AsyncClient(base_url=server.url, timeout=60,
                                         limits=httpx.Limits(max_connections=CLIENTS * 2)) as http:
        per_client = [CYCLES // CLIENTS + (1 if n < CYCLES % CLIENTS else 0) for n in range(CLIENTS)]
        parties = await asyncio.gather(*(milestones_for(http, count) for count in per_client))

        async def timed(name: str, method: str, url: str, headers: dict[str, str], body: Any = None) -> None:
            started = time.perf_counter()
            response = await http.request(method, url, headers=headers, json=body)
            timings[name].append(time.perf_counter() - started)
            assert response.status_code == 200, f"{name}: {response.status_code} {response.text}"

        async def work(client: dict[str, str], developer: dict[str, str], ids: list[str]) -> None:
            for milestone in ids:
                started = time.perf_counter()
                await timed("fund", "POST", f"/api/v1/milestones/{milestone}/fund",
                            {**client, "Idempotency-Key": f"fund-{milestone}"},
                            {"payment_method": "4242 4242 4242 4242"})
                await timed("submit", "POST", f"/api/v1/milestones/{milestone}/submit", developer,
                            {"note": "Done."})
                await timed("approve", "POST", f"/api/v1/milestones/{milestone}/approve", client)
                timings["cycle"].append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(work(*party) for party in parties))
        elapsed = time.perf_counter() - started

        async with site.db.reading() as session:
            problems = await Ledger().verify(session)
            total = await session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)))
            balances = dict((await session.execute(  # summed over owners: shards included
                select(LedgerAccount.purpose, func.sum(LedgerAccount.balance))
                .group_by(LedgerAccount.purpose)
            )).all())
            balances = {purpose: int(total) for purpose, total in balances.items()}
    await site.db.dispose()

    assert len(timings["cycle"]) == CYCLES
    assert problems == []
    assert total == 0
    assert balances.get(Purpose.ESCROW, 0) == 0
    developers = balances.get(Purpose.DEVELOPER_PENDING, 0) + balances.get(Purpose.DEVELOPER_AVAILABLE, 0)
    assert developers == CYCLES * AMOUNT * 9 // 10
    assert balances.get(Purpose.PLATFORM_REVENUE, 0) == CYCLES * AMOUNT // 10

    def stats(values: list[float]) -> str:
        return (f"p50 {ms(percentile(values, 50))}, p95 {ms(percentile(values, 95))}, "
                f"p99 {ms(percentile(values, 99))}")

    report(f"milestone fund -> submit -> approve through the API: {CYCLES:,} cycles by {CLIENTS} "
           f"clients at once (uvicorn in process, sandbox gateway)", [
        f"throughput: {rate(CYCLES, elapsed):,.1f} cycles/s ({rate(3 * CYCLES, elapsed):,.1f} requests/s) "
        f"over {elapsed:,.1f} s",
        *(f"{name:<8} {stats(values)}" for name, values in timings.items()),
        f"ledger afterwards: verify() found nothing; entries sum to {total}; "
        f"escrow {balances.get(Purpose.ESCROW, 0)}; developers hold {developers:,} = 90% of "
        f"{CYCLES * AMOUNT:,}; platform revenue {balances.get(Purpose.PLATFORM_REVENUE, 0):,}",
    ])
