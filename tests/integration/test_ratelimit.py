"""Rate limits in the database: exact limits, atomic across app instances, hashed subjects."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from litestar import Request, get
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from mercato import create_app, hookimpl
from mercato.core.db import Database, utcnow
from mercato.core.plugins import build_plugin_manager
from mercato.core.ratelimit import (
    RateLimitCounter,
    RateLimited,
    RateLimiter,
    client_address,
    describe_wait,
)
from mercato.core.settings import Settings
from mercato.core.site import Site
from tests.conftest import _delete_streams


@pytest.fixture
async def db(migrated_settings: Settings) -> AsyncIterator[Database]:
    database = Database(migrated_settings.database_url)
    yield database
    await database.dispose()


async def keys(db: Database) -> list[str]:
    async with db.reading() as session:
        return list(await session.scalars(select(RateLimitCounter.key)))


async def wait_for_window_start() -> None:
    """Sleep into the first tenth of a fresh second, so 1-second windows don't split a test."""
    await asyncio.sleep(1.01 - time.time() % 1)


# ---------------------------------------------------------------------------
# Counting
# ---------------------------------------------------------------------------


async def test_the_limit_holds_exactly(db: Database) -> None:
    limiter = RateLimiter(db)
    decisions = [
        await limiter.hit("login:ip", "198.51.100.1", limit=5, window_seconds=3600) for _ in range(6)
    ]
    assert [d.allowed for d in decisions] == [True] * 5 + [False]
    assert [d.count for d in decisions] == [1, 2, 3, 4, 5, 6]
    refused = decisions[-1]
    assert refused.limit == 5
    assert 1 <= refused.retry_after <= 3600


async def test_cost_counts_several_hits_at_once(db: Database) -> None:
    limiter = RateLimiter(db)
    assert (await limiter.hit("b", "s", limit=5, window_seconds=60, cost=4)).allowed
    decision = await limiter.hit("b", "s", limit=5, window_seconds=60, cost=2)
    assert (decision.allowed, decision.count) == (False, 6)


async def test_subjects_and_buckets_are_independent(db: Database) -> None:
    limiter = RateLimiter(db)
    for _ in range(2):
        await limiter.hit("login:ip", "a", limit=2, window_seconds=60)
    assert not (await limiter.hit("login:ip", "a", limit=2, window_seconds=60)).allowed
    assert (await limiter.hit("login:ip", "b", limit=2, window_seconds=60)).count == 1
    assert (await limiter.hit("login:account", "a", limit=2, window_seconds=60)).count == 1
    assert (await limiter.hit("mail:account", "a", limit=2, window_seconds=60)).count == 1


async def test_concurrent_hits_from_two_instances_never_exceed_the_limit(
    migrated_settings: Settings,
) -> None:
    first, second = Database(migrated_settings.database_url), Database(migrated_settings.database_url)
    try:
        limiters = [RateLimiter(first), RateLimiter(second)]
        decisions = await asyncio.gather(*(
            limiters[i % 2].hit("login:ip", "203.0.113.9", limit=10, window_seconds=3600)
            for i in range(40)
        ))
    finally:
        await first.dispose()
        await second.dispose()
    assert sum(d.allowed for d in decisions) == 10
    assert sorted(d.count for d in decisions) == list(range(1, 41))


async def test_a_new_window_starts_afresh(db: Database) -> None:
    limiter = RateLimiter(db)
    await wait_for_window_start()
    assert (await limiter.hit("b", "s", limit=1, window_seconds=1)).allowed
    refused = await limiter.hit("b", "s", limit=1, window_seconds=1)
    assert not refused.allowed
    assert refused.retry_after == 1
    await asyncio.sleep(1.1)
    again = await limiter.hit("b", "s", limit=1, window_seconds=1)
    assert (again.allowed, again.count) == (True, 1)


async def test_a_hit_commits_on_its_own(db: Database) -> None:
    limiter = RateLimiter(db)
    await limiter.hit("b", "s", limit=3, window_seconds=60)
    other = RateLimiter(db)  # another instance sees the committed count
    assert (await other.hit("b", "s", limit=3, window_seconds=60)).count == 2


async def test_subjects_are_not_stored_in_clear(db: Database) -> None:
    limiter = RateLimiter(db)
    await limiter.hit("mail:address", "alice@example.com", limit=5, window_seconds=3600)
    await limiter.hit("login:ip", "203.0.113.7", limit=5, window_seconds=60)
    stored = await keys(db)
    assert len(stored) == 2
    assert not any("alice" in key or "example" in key or "203.0.113" in key for key in stored)
    digest = hashlib.sha256(b"alice@example.com").hexdigest()[:32]
    assert any(key.startswith(f"mail:address:{digest}:") for key in stored)


async def test_a_secret_keys_the_subject_hash(db: Database) -> None:
    plain, keyed = RateLimiter(db), RateLimiter(db, secret="s3cret")
    assert plain.subject_hash("203.0.113.7") == hashlib.sha256(b"203.0.113.7").hexdigest()[:32]
    assert keyed.subject_hash("203.0.113.7") != plain.subject_hash("203.0.113.7")
    assert len(keyed.subject_hash("203.0.113.7")) == 32


async def test_invalid_arguments_are_refused(db: Database) -> None:
    limiter = RateLimiter(db)
    with pytest.raises(ValueError, match="window_seconds"):
        await limiter.hit("b", "s", limit=1, window_seconds=0)
    with pytest.raises(ValueError, match="too long"):
        await limiter.hit("x" * 300, "s", limit=1, window_seconds=60)


# ---------------------------------------------------------------------------
# Cleanup
# ---------------------------------------------------------------------------


async def add_counter(db: Database, key: str, *, expires_in: timedelta) -> None:
    async with db.transaction() as session:
        session.add(RateLimitCounter(key=key, count=1, expires_at=utcnow() + expires_in))


async def test_cleanup_removes_expired_counters_only(db: Database) -> None:
    await add_counter(db, "old", expires_in=timedelta(minutes=-1))
    await add_counter(db, "current", expires_in=timedelta(minutes=1))
    assert await RateLimiter(db).cleanup() == 1
    assert await keys(db) == ["current"]


async def test_hits_clean_up_now_and_then(db: Database) -> None:
    await add_counter(db, "old", expires_in=timedelta(minutes=-1))
    limiter = RateLimiter(db, cleanup_every=3)
    await limiter.hit("b", "s", limit=9, window_seconds=60)
    await limiter.hit("b", "s", limit=9, window_seconds=60)
    assert "old" in await keys(db)
    await limiter.hit("b", "s", limit=9, window_seconds=60)
    assert "old" not in await keys(db)


async def test_a_failing_cleanup_never_fails_the_hit(db: Database, monkeypatch: Any) -> None:
    limiter = RateLimiter(db, cleanup_every=1)

    async def broken() -> int:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(limiter, "cleanup", broken)
    assert (await limiter.hit("b", "s", limit=1, window_seconds=60)).allowed


# ---------------------------------------------------------------------------
# RateLimited through the app
# ---------------------------------------------------------------------------


def test_wait_is_said_in_seconds_then_minutes() -> None:
    assert describe_wait(1) == "1 second"
    assert describe_wait(42) == "42 seconds"
    assert describe_wait(119) == "119 seconds"
    assert describe_wait(120) == "2 minutes"
    assert describe_wait(3599) == "60 minutes"
    assert RateLimited(42).detail == "Too many attempts. Try again in 42 seconds."
    assert RateLimited(0).headers == {"Retry-After": "1"}


class Limited:
    """A plugin with a route allowing two calls an hour per client."""

    @hookimpl
    def register_routes(self, site: Site) -> list[Any]:
        limiter = RateLimiter(site.db)

        @get("/api/v1/limited")
        async def limited(request: Request[Any, Any, Any]) -> dict[str, bool]:
            address = client_address(request, site.settings.accounts.trusted_proxies)
            await limiter.check("test:ip", address, limit=2, window_seconds=3600)
            return {"ok": True}

        @get("/limited-page")
        async def limited_page(request: Request[Any, Any, Any]) -> str:
            await limiter.check("test:page", "everyone", limit=0, window_seconds=3600,
                                message="Slow down.")
            return "never"

        return [limited, limited_page]


@pytest.fixture
async def client(migrated_settings: Settings) -> AsyncIterator[Any]:
    pm = build_plugin_manager(migrated_settings, extra=[("ratelimit_test", Limited())])
    app = create_app(site=Site(migrated_settings, pm=pm))
    async with AsyncTestClient(app) as client:
        yield client
    await _delete_streams(migrated_settings.events.nats_url, {migrated_settings.events.stream})


async def test_over_the_limit_is_429_problem_with_retry_after(client: Any) -> None:
    for _ in range(2):
        assert (await client.get("/api/v1/limited")).status_code == 200
    response = await client.get("/api/v1/limited")
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("application/problem+json")
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 3600
    body = response.json()
    assert body["status"] == 429
    assert body["title"] == "Too Many Requests"
    assert body["detail"].startswith("Too many attempts. Try again in ")
    assert body["retry_after"] == retry_after


async def test_over_the_limit_page_is_themed_429_with_retry_after(client: Any) -> None:
    response = await client.get("/limited-page", headers={"Accept": "text/html"})
    assert response.status_code == 429
    assert response.headers["content-type"].startswith("text/html")
    assert int(response.headers["retry-after"]) >= 1
    assert "Slow down. Try again in" in response.text


# ---------------------------------------------------------------------------
# client_address
# ---------------------------------------------------------------------------


def request_from(peer: str | None, *forwarded: str) -> Request[Any, Any, Any]:
    scope: Any = {
        "type": "http", "method": "GET", "path": "/", "raw_path": b"/", "query_string": b"",
        "root_path": "", "scheme": "http", "server": ("test", 80),
        "client": (peer, 50000) if peer is not None else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }
    return Request(scope)


def test_an_untrusted_peer_cannot_forge_its_address() -> None:
    forged = request_from("198.51.100.7", "1.2.3.4")
    assert client_address(forged, []) == "198.51.100.7"
    assert client_address(forged, ["10.0.0.1"]) == "198.51.100.7"


def test_a_missing_peer_is_unknown() -> None:
    assert client_address(request_from(None, "1.2.3.4"), ["10.0.0.1"]) == "unknown"


def test_a_trusted_proxy_names_the_client() -> None:
    request = request_from("10.0.0.1", "203.0.113.5")
    assert client_address(request, ["10.0.0.1"]) == "203.0.113.5"


def test_the_right_most_untrusted_hop_wins_over_a_forged_prefix() -> None:
    # The client sent "X-Forwarded-For: 1.2.3.4"; the outer proxy appended the real peer,
    # the inner proxy appended the outer one.
    request = request_from("10.0.0.2", "1.2.3.4, 203.0.113.5, 10.0.0.1")
    assert client_address(request, ["10.0.0.1", "10.0.0.2"]) == "203.0.113.5"


def test_trusted_proxies_may_be_networks_and_headers_repeat() -> None:
    request = request_from("172.16.3.4", "1.2.3.4, 198.51.100.23", "192.168.1.9")
    assert client_address(request, ["172.16.0.0/12", "192.168.0.0/16"]) == "198.51.100.23"
    v6 = request_from("fd00::1", "2001:db8::42")
    assert client_address(v6, ["fd00::/8"]) == "2001:db8::42"


def test_only_proxies_in_the_chain_gives_the_left_most() -> None:
    request = request_from("10.0.0.2", "10.0.0.9, 10.0.0.1")
    assert client_address(request, ["10.0.0.0/8"]) == "10.0.0.9"
    assert client_address(request_from("10.0.0.2"), ["10.0.0.0/8"]) == "10.0.0.2"


def test_odd_forms_are_normalised_and_bad_entries_ignored() -> None:
    mapped = request_from("::ffff:10.0.0.1", "[2001:db8::7]:443")
    assert client_address(mapped, ["10.0.0.1", "not-an-address"]) == "2001:db8::7"
    ported = request_from("10.0.0.1", "203.0.113.5:5555")
    assert client_address(ported, ["10.0.0.1"]) == "203.0.113.5"
