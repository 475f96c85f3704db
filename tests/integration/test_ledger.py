"""The escrow ledger: balanced, idempotent postings; guarded balances; immutability; races;
and its invariants under any sequence of money movements (hypothesis, stateful)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import select, text

from mercato.core.ledger.models import ImmutableLedgerError, LedgerEntry, Purpose
from mercato.core.ledger.services import (
    SHARDS,
    Account,
    IdempotencyConflict,
    InsufficientFunds,
    Ledger,
    Leg,
    UnbalancedError,
)
from mercato.core.site import Site

ledger = Ledger()


@pytest.fixture
async def site(migrated_settings: Any) -> AsyncIterator[Site]:
    site = Site(migrated_settings)
    yield site
    await site.db.dispose()


def funding(contract: uuid.UUID, amount: int, gateway: str = "sandbox", currency: str = "USD") -> list[Leg]:
    return [Leg(Account.gateway(gateway, currency), -amount), Leg(Account.escrow(contract, currency), amount)]


def release(
    contract: uuid.UUID, developer: uuid.UUID, amount: int, fee: int, currency: str = "USD"
) -> list[Leg]:
    legs = [Leg(Account.escrow(contract, currency), -amount),
            Leg(Account.user(developer, Purpose.DEVELOPER_PENDING, currency), amount - fee)]
    return legs + ([Leg(Account.revenue(currency), fee)] if fee else [])


async def post(site: Site, key: str, kind: str, legs: list[Leg]) -> bool:
    """Post in a transaction of its own; True when money moved (not a replay)."""
    async with site.db.transaction() as session:
        return not (await ledger.post(session, key=key, kind=kind, legs=legs)).replayed


async def balance(site: Site, account: Account) -> int:
    async with site.db.reading() as session:
        return await ledger.balance(session, account)


async def test_a_posting_moves_money_once_per_key(site: Site) -> None:
    contract, developer = uuid.uuid4(), uuid.uuid4()
    assert await post(site, f"fund-{contract}", "funding", funding(contract, 15_000))
    assert not await post(site, f"fund-{contract}", "funding", funding(contract, 15_000))
    assert await balance(site, Account.escrow(contract, "USD")) == 15_000

    assert await post(site, f"release-{contract}", "release", release(contract, developer, 10_000, 1_000))
    assert await balance(site, Account.escrow(contract, "USD")) == 5_000
    assert await balance(site, Account.user(developer, Purpose.DEVELOPER_PENDING, "USD")) == 9_000
    async with site.db.reading() as session:
        assert await ledger.balances(session, f"user:{developer}") == {("developer_pending", "USD"): 9_000}
        assert await ledger.verify(session) == []
        assert sum((await session.scalars(select(LedgerEntry.amount))).all()) == 0


async def test_the_same_key_for_another_movement_is_a_conflict(site: Site) -> None:
    contract = uuid.uuid4()
    await post(site, "k-1", "funding", funding(contract, 500))
    with pytest.raises(IdempotencyConflict):
        await post(site, "k-1", "funding", funding(contract, 501))
    with pytest.raises(IdempotencyConflict):
        await post(site, "k-1", "refund", funding(contract, 500))
    assert await balance(site, Account.escrow(contract, "USD")) == 500


@pytest.mark.parametrize("legs", [
    [],
    [Leg(Account.revenue("USD"), 100)],
    [Leg(Account.revenue("USD"), 100), Leg(Account.gateway("g", "USD"), -99)],
    [Leg(Account.revenue("USD"), 100), Leg(Account.gateway("g", "EUR"), -100)],
    [Leg(Account.revenue("USD"), 0), Leg(Account.gateway("g", "USD"), 0)],
    [Leg(Account.revenue("usd"), 1), Leg(Account.gateway("g", "usd"), -1)],
    [Leg(Account.revenue("USD"), 1.0), Leg(Account.gateway("g", "USD"), -1)],  # type: ignore[arg-type]
    [Leg(Account.gateway("g", "USD"), -2), Leg(Account.revenue("USD"), 1), Leg(Account.revenue("USD"), 1)],
])
async def test_unbalanced_or_malformed_postings_are_refused(site: Site, legs: list[Leg]) -> None:
    with pytest.raises(UnbalancedError):
        await post(site, f"bad-{uuid.uuid4()}", "funding", legs)


async def test_guarded_accounts_never_go_below_zero(site: Site) -> None:
    contract, developer = uuid.uuid4(), uuid.uuid4()
    await post(site, f"fund-{contract}", "funding", funding(contract, 1_000))
    with pytest.raises(InsufficientFunds):
        await post(site, f"release-{contract}", "release", release(contract, developer, 1_001, 0))
    assert await balance(site, Account.escrow(contract, "USD")) == 1_000
    assert await balance(site, Account.user(developer, Purpose.DEVELOPER_PENDING, "USD")) == 0
    # A gateway's clearing account is the outside world: it goes negative as money comes in.
    assert await balance(site, Account.gateway("sandbox", "USD")) <= -1_000


async def test_transactions_and_entries_are_never_changed(site: Site) -> None:
    contract = uuid.uuid4()
    await post(site, f"fund-{contract}", "funding", funding(contract, 700))
    with pytest.raises(ImmutableLedgerError):
        async with site.db.transaction() as session:
            entry = (await session.scalars(select(LedgerEntry).limit(1))).one()
            entry.amount = 1
    with pytest.raises(Exception, match="immutable"):
        async with site.db.transaction() as session:
            await session.execute(text("UPDATE ledger_entries SET amount = amount + 1"))
    with pytest.raises(Exception, match="immutable"):
        async with site.db.transaction() as session:
            await session.execute(text("DELETE FROM ledger_transactions"))
    async with site.db.reading() as session:
        assert await ledger.verify(session) == []


async def test_verify_recomputes_balances_from_entries(site: Site) -> None:
    contract = uuid.uuid4()
    await post(site, f"fund-{contract}", "funding", funding(contract, 300))
    async with site.db.transaction() as session:
        await session.execute(text("UPDATE ledger_accounts SET balance = 299 WHERE owner = :o"),
                              {"o": f"contract:{contract}"})
    async with site.db.reading() as session:
        problems = await ledger.verify(session)
    assert problems == [f"contract:{contract} escrow USD: cached balance 299, entries sum to 300"]


async def test_fifty_concurrent_posts_of_one_key_move_money_once(site: Site) -> None:
    contract = uuid.uuid4()
    moved = await asyncio.gather(*(post(site, f"fund-{contract}", "funding", funding(contract, 2_500))
                                   for _ in range(50)))
    assert moved.count(True) == 1
    assert await balance(site, Account.escrow(contract, "USD")) == 2_500
    async with site.db.reading() as session:
        assert await ledger.verify(session) == []


async def test_racing_payouts_never_overdraw(site: Site) -> None:
    developer = uuid.uuid4()
    available = Account.user(developer, Purpose.DEVELOPER_AVAILABLE, "USD")
    await post(site, f"seed-{developer}", "adjustment", [Leg(Account.gateway("sandbox", "USD"), -10_000),
                                                          Leg(available, 10_000)])

    async def payout(n: int) -> bool:
        try:
            return await post(site, f"payout-{developer}-{n}", "payout",
                              [Leg(available, -7_000), Leg(Account.gateway("sandbox", "USD"), 7_000)])
        except InsufficientFunds:
            return False

    results = await asyncio.gather(*(payout(n) for n in range(10)))
    assert results.count(True) == 1
    assert await balance(site, available) == 3_000


# ---------------------------------------------------------------------------
# Any sequence of movements keeps the books straight
# ---------------------------------------------------------------------------

amounts = st.integers(min_value=1, max_value=50_000)


class Books(RuleBasedStateMachine):
    """Fund, release (with a fee), refund, let holds mature, pay out, replay a key and try to
    overdraw, in any order, on two contracts and two developers; the model says what every
    balance must be."""

    site: Site
    runner: asyncio.Runner

    def __init__(self) -> None:
        super().__init__()
        token = uuid.uuid4().hex[:8]
        self.gateway = f"test-{token}"
        self.contracts = [uuid.uuid4(), uuid.uuid4()]
        self.developers = [uuid.uuid4(), uuid.uuid4()]
        self.escrow = dict.fromkeys(self.contracts, 0)
        self.funded = dict.fromkeys(self.contracts, 0)
        self.released = dict.fromkeys(self.contracts, 0)
        self.refunded = dict.fromkeys(self.contracts, 0)
        self.pending = dict.fromkeys(self.developers, 0)
        self.available = dict.fromkeys(self.developers, 0)
        self.revenue_start = 0
        self.revenue = 0
        self.posted: list[tuple[str, str, list[Leg]]] = []
        self.counter = 0

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    def apply(self, kind: str, legs: list[Leg]) -> bool:
        self.counter += 1
        key = f"{self.gateway}-{self.counter}"
        try:
            moved = self.run(post(self.site, key, kind, legs))
        except InsufficientFunds:
            return False
        assert moved
        self.posted.append((key, kind, legs))
        return True

    @initialize()
    def start(self) -> None:
        self.revenue_start = self.run(balance(self.site, Account.revenue("USD")))

    @rule(which=st.integers(0, 1), amount=amounts)
    def fund(self, which: int, amount: int) -> None:
        contract = self.contracts[which]
        assert self.apply("funding", funding(contract, amount, self.gateway))
        self.escrow[contract] += amount
        self.funded[contract] += amount

    @rule(which=st.integers(0, 1), who=st.integers(0, 1), share=st.floats(0.01, 1.5),
          fee_rate=st.sampled_from([0, 0.1]))
    def release(self, which: int, who: int, share: float, fee_rate: float) -> None:
        contract, developer = self.contracts[which], self.developers[who]
        amount = max(1, int(self.escrow[contract] * share))
        fee = int(amount * fee_rate)
        ok = self.apply("release", release(contract, developer, amount, fee))
        assert ok == (amount <= self.escrow[contract])
        if ok:
            self.escrow[contract] -= amount
            self.released[contract] += amount
            self.pending[developer] += amount - fee
            self.revenue += fee

    @rule(which=st.integers(0, 1), share=st.floats(0.01, 1.2))
    def refund(self, which: int, share: float) -> None:
        contract = self.contracts[which]
        amount = max(1, int(self.escrow[contract] * share))
        ok = self.apply("refund", [Leg(Account.escrow(contract, "USD"), -amount),
                                   Leg(Account.gateway(self.gateway, "USD"), amount)])
        assert ok == (amount <= self.escrow[contract])
        if ok:
            self.escrow[contract] -= amount
            self.refunded[contract] += amount

    @rule(who=st.integers(0, 1))
    def mature(self, who: int) -> None:
        developer = self.developers[who]
        amount = self.pending[developer]
        if amount:
            assert self.apply("hold_release", [
                Leg(Account.user(developer, Purpose.DEVELOPER_PENDING, "USD"), -amount),
                Leg(Account.user(developer, Purpose.DEVELOPER_AVAILABLE, "USD"), amount)])
            self.pending[developer] = 0
            self.available[developer] += amount

    @rule(who=st.integers(0, 1), amount=amounts)
    def payout(self, who: int, amount: int) -> None:
        developer = self.developers[who]
        ok = self.apply("payout", [Leg(Account.user(developer, Purpose.DEVELOPER_AVAILABLE, "USD"), -amount),
                                   Leg(Account.gateway(self.gateway, "USD"), amount)])
        assert ok == (amount <= self.available[developer])
        if ok:
            self.available[developer] -= amount

    @precondition(lambda self: self.posted)
    @rule(index=st.integers(min_value=0))
    def replay(self, index: int) -> None:
        key, kind, legs = self.posted[index % len(self.posted)]
        assert not self.run(post(self.site, key, kind, legs))

    @invariant()
    def balances_match_the_model(self) -> None:
        async def read() -> None:
            async with self.site.db.reading() as session:
                for contract in self.contracts:
                    escrow = await ledger.balance(session, Account.escrow(contract, "USD"))
                    assert escrow == self.escrow[contract]
                    assert escrow == self.funded[contract] - self.released[contract] - self.refunded[contract]
                for developer in self.developers:
                    owner = f"user:{developer}"
                    held = await ledger.balances(session, owner)
                    assert held.get(("developer_pending", "USD"), 0) == self.pending[developer]
                    assert held.get(("developer_available", "USD"), 0) == self.available[developer]
                revenue = await ledger.balance(session, Account.revenue("USD"))
                assert revenue - self.revenue_start == self.revenue
                outside = await ledger.balance(session, Account.gateway(self.gateway, "USD"))
                inside = sum(self.escrow.values()) + sum(self.pending.values()) + sum(self.available.values())
                assert -outside == inside + self.revenue  # every minor unit is somewhere
        self.run(read())

    def teardown(self) -> None:
        async def check() -> None:
            async with self.site.db.reading() as session:
                assert await ledger.verify(session) == []
        self.run(check())


def test_the_books_balance_after_any_sequence_of_movements(migrated_settings: Any) -> None:
    with asyncio.Runner() as runner:
        Books.runner = runner
        Books.site = Site(migrated_settings)
        try:
            machine = Books.TestCase
            machine.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
            machine().runTest()
        finally:
            runner.run(Books.site.db.dispose())


def test_hot_accounts_are_sharded_by_what_a_movement_belongs_to() -> None:
    contract = uuid.UUID(int=SHARDS * 7 + 3)
    assert Account.revenue("USD").owner == "platform"
    assert Account.revenue("USD", by=contract).owner == "platform#3"
    assert Account.gateway("sandbox", "EUR", by=contract).owner == "gateway:sandbox#3"
    assert Account.gateway("sandbox", "EUR", by=uuid.UUID(int=SHARDS * 2)).owner == "gateway:sandbox"
    owners = {Account.revenue("USD", by=uuid.uuid4()).owner for _ in range(400)}
    assert len(owners) == SHARDS
