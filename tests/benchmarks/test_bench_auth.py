"""Authentication costs: argon2id log-in, JWT verification, and what auth adds per request.

1. argon2id: ``hash_password`` and ``verify_password`` (each in its worker thread, as the
   app calls them), median/p95 over RUNS_ARGON2, with the parameters read back from the PHC
   string the hash carries.
2. ``TokenSigner``: ``issue`` and ``verify("access", …)`` in µs, over RUNS_TOKEN calls; and
   the auth middleware called directly (no HTTP) for an anonymous request, a Bearer one and
   a cookie-session one, against the bare inner app.
3. The number the issue targets: a started, migrated site served by uvicorn in the test's
   event loop; one persistent ``httpx.AsyncClient`` connection sends GET /health (no
   database) in rounds, the order rotating each round: anonymous, ``Authorization: Bearer
   <access token>``, anonymous with a dummy header as long as the Bearer one (the cost of
   the bytes alone), an anonymous browser (CSRF cookie only) and a signed-in browser
   (session + CSRF cookie). The middleware runs for all; median(Bearer) -
   median(anonymous) is the authenticated request's overhead, asserted < 1 ms at the
   median (the only timed assertion: the issue names it as the target). The cookie
   session is compared with the anonymous browser the same way.
4. POST /api/v1/auth/login, RUNS_LOGIN times (rate limits raised), against argon2's verify
   alone: the share of a log-in that is the hash.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import argon2
import httpx
import pytest

from mercato import create_app
from mercato.core.accounts.middleware import CSRF_COOKIE, SESSION_COOKIE, auth_middleware
from mercato.core.accounts.models import SessionKind
from mercato.core.accounts.services import AccountService
from mercato.core.accounts.sessions import limiter_of, runtime_of
from mercato.core.security.passwords import hash_password, verify_password
from mercato.core.site import Site
from tests.benchmarks._bench import median, percentile, report
from tests.conftest import Databases, _delete_streams, _with_database
from tests.e2e.conftest import LiveServer

RUNS_ARGON2 = 30
RUNS_TOKEN = 20_000
RUNS_MIDDLEWARE = 20_000
WARMUP_ROUNDS = 300
ROUNDS = 2_000
RUNS_LOGIN = 20
TARGET_OVERHEAD_SECONDS = 0.001

PASSWORD = "correct horse battery staple"
EMAIL = "bench.auth@example.com"
RAISED_LIMITS = {"login_attempts_per_minute": 100_000, "login_attempts_per_account": 100_000}


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def ms2(seconds: float) -> str:
    return f"{seconds * 1000:,.3f} ms"


def stats(values: list[float], unit: Callable[[float], str]) -> str:
    return f"median {unit(median(values))}, p95 {unit(percentile(values, 95))}"


async def timed(runs: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


def timed_sync(runs: int, call: Callable[[], Any]) -> list[float]:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(runs):
        started = clock()
        call()
        samples.append((clock() - started) / 1e9)
    return samples


class Live:
    def __init__(self, site: Site, url: str) -> None:
        self.site = site
        self.url = url


@pytest.fixture
async def live(make_settings: Any, databases: Databases) -> AsyncIterator[Live]:
    # No log line per request: uvicorn's access log, and httpx's INFO line per request.
    access = logging.getLogger("uvicorn.access")
    propagate, handlers = access.propagate, list(access.handlers)
    quiet = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    settings = make_settings(accounts=RAISED_LIMITS)
    settings = _with_database(settings, await databases.create_migrated(settings))
    site = Site(settings)
    try:
        async with LiveServer(create_app(site=site), access_log=False) as server:
            yield Live(site, server.url)
    finally:
        access.propagate, access.handlers = propagate, handlers
        for logger, level in zip(quiet, levels, strict=True):
            logger.setLevel(level)
        await _delete_streams(settings.events.nats_url, {settings.events.stream})


def no_cookie_jar(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Cookies are sent only as each request says, never remembered from responses."""
    client.cookies.jar.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return client


async def register(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/v1/auth/register", json={
        "email": EMAIL, "password": PASSWORD, "display_name": "Bench Auth", "roles": ["client"]})
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


async def browser_session_cookie(site: Site) -> str:
    service = AccountService(site)
    async with site.db.transaction() as session:
        user = await service.find_by_email(session, EMAIL)
        assert user is not None
        auth = await service.start_session(session, user, kind=SessionKind.BROWSER)
        return service.session_cookie_token(user, auth)


# ---------------------------------------------------------------------------
# 1 + 2: argon2id, tokens, the middleware alone
# ---------------------------------------------------------------------------


async def test_password_hash_and_token_costs(make_settings: Any) -> None:
    hashes: list[str] = []

    async def hash_once() -> None:
        hashes.append(await hash_password(PASSWORD))

    await hash_once()  # warm-up
    hash_times = await timed(RUNS_ARGON2, hash_once)
    stored = hashes[-1]
    verify_times = await timed(RUNS_ARGON2, lambda: verify_password(stored, PASSWORD))
    assert (await verify_password(stored, PASSWORD)).ok
    assert not (await verify_password(stored, PASSWORD + "!")).ok
    params = argon2.extract_parameters(stored)
    assert stored.startswith("$argon2id$")

    site = Site(make_settings())
    try:
        runtime = runtime_of(site)
        signer = runtime.signer
        uid, sid = uuid.uuid4(), uuid.uuid4()
        roles = frozenset({"client"})

        def issue(kind: str = "access") -> str:
            return signer.issue(kind, user_id=uid, session_id=sid, roles=roles, ttl_seconds=900)

        token = issue()
        assert signer.verify("access", token).session_id == sid
        issue_times = timed_sync(RUNS_TOKEN, issue)
        verify_token_times = timed_sync(RUNS_TOKEN, lambda: signer.verify("access", token))
        revoked_times = timed_sync(RUNS_TOKEN, lambda: sid in runtime.revoked)

        middleware_rows = await middleware_costs(site, token, issue("session"))
    finally:
        await site.db.dispose()

    verify_median = median(verify_token_times)
    report("auth costs: argon2id and JWT, in-process", [
        f"argon2id parameters (from the PHC string): type {params.type.name}, v={params.version}, "
        f"m={params.memory_cost} KiB ({params.memory_cost / 1024:g} MiB), t={params.time_cost}, "
        f"p={params.parallelism}, hash {params.hash_len} B, salt {params.salt_len} B",
        f"hash_password   ({RUNS_ARGON2} runs, in its thread):  {stats(hash_times, ms2)}",
        f"verify_password ({RUNS_ARGON2} runs, in its thread):  {stats(verify_times, ms2)}",
        f"TokenSigner.issue('access')    ({RUNS_TOKEN:,} runs):  {stats(issue_times, us)}",
        f"TokenSigner.verify('access')   ({RUNS_TOKEN:,} runs):  {stats(verify_token_times, us)}",
        f"revocation check (in memory)   ({RUNS_TOKEN:,} runs):  {stats(revoked_times, us)}",
        f"argon2 verify / JWT verify: {median(verify_times) / verify_median:,.0f}x",
        f"auth middleware called directly on GET /health ({RUNS_MIDDLEWARE:,} runs each):",
        *middleware_rows,
    ])


async def middleware_costs(site: Site, access_token: str, session_token: str) -> list[str]:
    """The auth middleware around a no-op app, per request kind, vs the no-op app alone."""

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        pass

    middleware = auth_middleware(site)(inner)
    csrf = f"{CSRF_COOKIE}={secrets.token_urlsafe(24)}"
    bearer = (b"authorization", f"Bearer {access_token}".encode())
    session = (b"cookie", f"{SESSION_COOKIE}={session_token}; {csrf}".encode())
    kinds: dict[str, list[tuple[bytes, bytes]]] = {
        "anonymous, no cookie (new CSRF nonce + Set-Cookie)": [],
        "Bearer, no cookie (new CSRF nonce + Set-Cookie)": [bearer],
        "anonymous browser (CSRF cookie)": [(b"cookie", csrf.encode())],
        "Bearer + CSRF cookie": [bearer, (b"cookie", csrf.encode())],
        "browser session (session + CSRF cookie)": [session],
    }
    base = {"type": "http", "method": "GET", "path": "/health", "query_string": b""}

    async def run(app: Any, headers: list[tuple[bytes, bytes]]) -> list[float]:
        samples = []
        clock = time.perf_counter_ns
        for _ in range(RUNS_MIDDLEWARE):
            scope = {**base, "headers": headers}
            started = clock()
            await app(scope, receive, send)
            samples.append((clock() - started) / 1e9)
        return samples

    await run(middleware, kinds["browser session (session + CSRF cookie)"])  # warm-up
    bare = median(await run(inner, []))
    results = {label: median(await run(middleware, headers)) for label, headers in kinds.items()}
    rows = [f"  no-op app alone:  {us(bare)}"]
    for label, seconds in results.items():
        rows.append(f"  {label}:  {us(seconds)}  (middleware {us(seconds - bare)})")
    return rows


# ---------------------------------------------------------------------------
# 3: authenticated vs anonymous request over HTTP
# ---------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_authenticated_request_overhead(live: Live) -> None:
    async with no_cookie_jar(httpx.AsyncClient(base_url=live.url, timeout=10.0)) as client:
        access_token = await register(client)
        session_token = await browser_session_cookie(live.site)
        csrf = f"{CSRF_COOKIE}={secrets.token_urlsafe(24)}"
        kinds: dict[str, dict[str, str]] = {
            "anonymous": {},
            "bearer": {"Authorization": f"Bearer {access_token}"},
            # Same bytes on the wire as "bearer", no auth: what the longer request itself costs.
            "anonymous + pad": {"X-Bench-Pad": f"Bearer {access_token}"},
            "anonymous browser": {"Cookie": csrf},
            "cookie session": {"Cookie": f"{SESSION_COOKIE}={session_token}; {csrf}"},
        }

        # The credentials work, and the middleware runs on /health (a bad token is a 401).
        assert (await client.get("/api/v1/me", headers=kinds["bearer"])).status_code == 200
        assert (await client.get("/api/v1/me", headers=kinds["cookie session"])).status_code == 200
        assert (await client.get("/api/v1/me")).status_code == 401
        assert (await client.get("/health", headers={"Authorization": "Bearer x.y.z"})).status_code == 401

        samples: dict[str, list[float]] = {label: [] for label in kinds}
        order = list(kinds)
        statuses: set[int] = set()
        connections: set[int] = set()
        clock = time.perf_counter_ns
        for round_ in range(WARMUP_ROUNDS + ROUNDS):
            shift = round_ % len(order)
            for label in order[shift:] + order[:shift]:
                headers = kinds[label]
                started = clock()
                response = await client.get("/health", headers=headers)
                elapsed = (clock() - started) / 1e9
                statuses.add(response.status_code)
                if round_ >= WARMUP_ROUNDS:
                    samples[label].append(elapsed)
                    connections.add(id(response.extensions.get("network_stream")))
        assert statuses == {200}

    med = {label: median(values) for label, values in samples.items()}
    paired_bearer = [b - a for a, b in zip(samples["anonymous"], samples["bearer"], strict=True)]
    paired_cookie = [c - a for a, c in zip(samples["anonymous browser"], samples["cookie session"],
                                           strict=True)]
    overhead = med["bearer"] - med["anonymous"]
    wire = med["anonymous + pad"] - med["anonymous"]
    cookie_overhead = med["cookie session"] - med["anonymous browser"]
    met = overhead < TARGET_OVERHEAD_SECONDS
    report(f"authenticated vs anonymous GET /health over HTTP (uvicorn, one keep-alive connection; "
           f"{ROUNDS:,} rounds of {len(order)} after {WARMUP_ROUNDS} warm-up)", [
        *(f"{label:<17} {stats(values, ms2)}" for label, values in samples.items()),
        f"Bearer overhead  = median(bearer) - median(anonymous) = {ms2(overhead)} "
        f"({med['bearer'] / med['anonymous']:.3f}x); median of paired differences "
        f"{ms2(median(paired_bearer))}",
        f"  of which the header's bytes (median(anonymous + pad) - median(anonymous)): {ms2(wire)}; "
        f"the auth work: {ms2(med['bearer'] - med['anonymous + pad'])}",
        f"cookie overhead  = median(cookie session) - median(anonymous browser) = "
        f"{ms2(cookie_overhead)} ({med['cookie session'] / med['anonymous browser']:.3f}x); "
        f"median of paired differences "
        f"{ms2(median(paired_cookie))}",
        f"connections used: {len(connections)}",
        f"target: Bearer overhead < {TARGET_OVERHEAD_SECONDS * 1000:.0f} ms at the median → "
        f"{'met' if met else 'NOT met'}",
    ])
    assert overhead < TARGET_OVERHEAD_SECONDS, f"auth overhead {ms2(overhead)} at the median"


# ---------------------------------------------------------------------------
# 4: the log-in endpoint
# ---------------------------------------------------------------------------


@pytest.mark.timeout(300)
async def test_login_latency(live: Live) -> None:
    async with no_cookie_jar(httpx.AsyncClient(base_url=live.url, timeout=30.0)) as client:
        await register(client)
        body = {"email": EMAIL, "password": PASSWORD}

        async def login() -> None:
            response = await client.post("/api/v1/auth/login", json=body)
            assert response.status_code == 200, response.text
            assert response.json()["access_token"]

        await login()  # warm-up
        login_times = await timed(RUNS_LOGIN, login)
        wrong = await client.post("/api/v1/auth/login", json={**body, "password": PASSWORD + "!"})
        assert wrong.status_code == 401

    stored = await hash_password(PASSWORD)
    verify_times = await timed(RUNS_LOGIN, lambda: verify_password(stored, PASSWORD))
    limiter = limiter_of(live.site)
    limit_times = await timed(RUNS_LOGIN, lambda: limiter.check("bench:ip", "127.0.0.1", limit=10**6,
                                                                window_seconds=60))

    login_median, verify_median = median(login_times), median(verify_times)
    report(f"POST /api/v1/auth/login: {RUNS_LOGIN} log-ins over HTTP vs argon2id verify alone", [
        f"log-in (HTTP, rate limits, DB, argon2id, tokens):  {stats(login_times, ms2)}",
        f"argon2id verify_password alone:                    {stats(verify_times, ms2)}",
        f"one rate-limit hit (log-in makes 2):               {stats(limit_times, ms2)}",
        f"argon2id share of a log-in (median): {verify_median / login_median:.0%}; "
        f"the rest (HTTP, 2 rate-limit hits, lookup, session + refresh token insert, JWT): "
        f"{ms2(login_median - verify_median)}",
    ])
