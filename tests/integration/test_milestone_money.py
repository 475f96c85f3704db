"""Milestone money under any sequence of actions (hypothesis, stateful), through the services
that the API calls: fund (some cards declined), submit, ask for changes, release part, approve,
cancel, dispute (respond, resolve with a split, or let the response window decide), let timers
run, pay out. A model of each milestone says what must happen; after every
step the books are checked:

* every transaction sums to zero and no guarded balance is below zero (``Ledger.verify``);
* the contract's escrow equals what was funded less what was released and refunded;
* the developer's pending + available + paid out equals what was released less the fees;
* each movement's key applied once (a replayed settlement moves nothing).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from litestar.exceptions import ClientException

from mercato.core.accounts.models import User
from mercato.core.contracts.milestones import MilestoneService
from mercato.core.contracts.models import IN_ESCROW, MilestoneStatus
from mercato.core.contracts.services import ContractService, MilestonePlan
from mercato.core.db import utcnow
from mercato.core.ledger.models import Purpose
from mercato.core.ledger.services import Account, Ledger
from mercato.core.payments.fees import percent_of
from mercato.core.payments.gateways import ChargeRequest, Outcome
from mercato.core.payments.payout_methods import PayoutMethodIn, PayoutMethods
from mercato.core.payments.wallet import PayoutIn, Wallet
from mercato.core.site import Site
from mercato.plugins.disputes.service import DisputeService

M = MilestoneStatus
AMOUNTS = (12_345, 40_000, 999)
CARDS = {"4242424242424242": True, "4000000000000002": False}


class MilestoneMoney(RuleBasedStateMachine):
    site: Site
    runner: asyncio.Runner

    def __init__(self) -> None:
        super().__init__()
        self.service = MilestoneService(self.site)
        self.ledger = Ledger()
        self.status = [M.PENDING] * len(AMOUNTS)
        self.released = [0] * len(AMOUNTS)
        self.refunded = [0] * len(AMOUNTS)
        self.to_developer = 0
        self.paid_out = 0
        self.clock = 0.0
        """Days the timers have been run ahead."""
        self.dispute: list[Any] | None = None
        """[milestone index, dispute id, opened by the developer, responded] while one is open."""
        self.disputes = DisputeService(self.site)

    def run(self, coroutine: Any) -> Any:
        return self.runner.run(coroutine)

    async def _setup(self) -> None:
        async with self.site.db.transaction() as session:
            token = uuid.uuid4().hex[:10]
            client = User(id=uuid.uuid4(), email=f"c{token}@example.com",
                          email_key=f"c{token}@example.com", display_name="Client", is_client=True)
            developer = User(id=uuid.uuid4(), email=f"d{token}@example.com",
                             email_key=f"d{token}@example.com", display_name="Developer", is_developer=True)
            session.add_all([client, developer])
            await session.flush()
            contract = await ContractService().create(
                session, client_id=client.id, developer_id=developer.id, origin_type="proposal",
                origin_id=uuid.uuid4(), title="Hypothesis", currency="USD",
                milestones=[MilestonePlan(title=f"M{i}", amount=amount) for i, amount in enumerate(AMOUNTS)],
            )
            await session.flush()
            self.client_id, self.developer_id, self.contract_id = client.id, developer.id, contract.id
            rows = await ContractService().out(session, contract)
            self.milestones = [m.id for m in rows.milestones]
        bank = await PayoutMethods(self.site).add(self.developer_id,
                                                  PayoutMethodIn(account_number="000123456789"))
        self.payout_method_id = bank.id

    @initialize()
    def setup(self) -> None:
        self.run(self._setup())

    def attempt(self, work: Any) -> bool:
        """Run ``work(session)`` in a transaction; False when the service refused (4xx)."""
        async def go() -> bool:
            try:
                async with self.site.db.transaction() as session:
                    await work(session)
            except ClientException:
                return False
            return True

        return bool(self.run(go()))

    def in_escrow(self, index: int) -> int:
        if self.status[index] not in IN_ESCROW:
            return 0
        return AMOUNTS[index] - self.released[index] - self.refunded[index]

    # -- rules ---------------------------------------------------------------------------
    @rule(index=st.integers(0, len(AMOUNTS) - 1), card=st.sampled_from(sorted(CARDS)))
    def fund(self, index: int, card: str) -> None:
        milestone_id = self.milestones[index]

        async def go() -> str | None:
            try:
                async with self.site.db.transaction() as session:
                    payment = await self.service.begin_funding(session, milestone_id, self.client_id,
                                                               "sandbox")
                    request = ChargeRequest(reference=payment.reference, amount=payment.amount,
                                            currency="USD", payment_method=card)
            except ClientException:
                return None
            result = await self.site.gateways.get("sandbox").charge(request)
            for _ in range(2):  # the answer, then the same answer again (a webhook): applied once
                async with self.site.db.transaction() as session:
                    await self.service.settle_charge(session, request.reference, result.outcome,
                                                     gateway_ref=result.gateway_id, message=result.message)
            return str(result.outcome)

        outcome = self.run(go())
        if self.status[index] != M.PENDING or self.dispute is not None:
            assert outcome is None
            return
        assert outcome == (Outcome.SUCCEEDED if CARDS[card] else Outcome.FAILED)
        if CARDS[card]:
            self.status[index] = M.FUNDED

    @rule(index=st.integers(0, len(AMOUNTS) - 1))
    def submit(self, index: int) -> None:
        milestone = self.milestones[index]
        done = self.attempt(lambda s: self.service.submit(s, milestone, self.developer_id, "done"))
        assert done == (self.status[index] in (M.FUNDED, M.CHANGES_REQUESTED) and self.dispute is None)
        if done:
            self.status[index] = M.SUBMITTED

    @rule(index=st.integers(0, len(AMOUNTS) - 1))
    def request_changes(self, index: int) -> None:
        milestone = self.milestones[index]
        done = self.attempt(lambda s: self.service.request_changes(s, milestone, self.client_id, "no"))
        assert done == (self.status[index] == M.SUBMITTED and self.dispute is None)
        if done:
            self.status[index] = M.CHANGES_REQUESTED

    def _released(self, index: int, amount: int) -> None:
        self.released[index] += amount
        self.to_developer += amount - percent_of(amount, 1000)
        if self.released[index] + self.refunded[index] == AMOUNTS[index]:
            self.status[index] = M.APPROVED

    @rule(index=st.integers(0, len(AMOUNTS) - 1), share=st.floats(0.01, 1.0))
    def release_part(self, index: int, share: float) -> None:
        rest = self.in_escrow(index)
        amount = max(1, int(rest * share)) if rest else 1
        done = self.attempt(lambda s: self.service.release(s, self.milestones[index], self.client_id, amount))
        assert done == (0 < amount <= rest and self.dispute is None)
        if done:
            self._released(index, amount)

    @rule(index=st.integers(0, len(AMOUNTS) - 1))
    def approve(self, index: int) -> None:
        rest = self.in_escrow(index)
        done = self.attempt(lambda s: self.service.release(s, self.milestones[index], self.client_id))
        assert done == (self.status[index] in IN_ESCROW and self.dispute is None)
        if done:
            self._released(index, rest)

    @rule(index=st.integers(0, len(AMOUNTS) - 1), by_developer=st.booleans())
    def cancel(self, index: int, by_developer: bool) -> None:
        who = self.developer_id if by_developer else self.client_id
        rest = self.in_escrow(index)
        done = self.attempt(lambda s: self.service.cancel(s, self.milestones[index], who))
        allowed = self.status[index] == M.PENDING or (self.status[index] == M.FUNDED and by_developer)
        assert done == (allowed and self.dispute is None)
        if done:
            self.refunded[index] += rest
            self.status[index] = M.CANCELLED

    @rule(index=st.integers(0, len(AMOUNTS) - 1), by_developer=st.booleans())
    def open_dispute(self, index: int, by_developer: bool) -> None:
        who = self.developer_id if by_developer else self.client_id

        async def go() -> uuid.UUID | None:
            try:
                async with self.site.db.transaction() as session:
                    dispute = await self.disputes.open(session, self.milestones[index], who, "Not as agreed.")
                    return dispute.id
            except ClientException:
                return None

        dispute_id = self.run(go())
        allowed = self.status[index] in (M.FUNDED, M.SUBMITTED, M.CHANGES_REQUESTED) and self.dispute is None
        assert (dispute_id is not None) == allowed
        if dispute_id is not None:
            self.dispute = [index, dispute_id, by_developer, False]
            self.status[index] = M.DISPUTED

    @rule()
    def respond(self) -> None:
        if self.dispute is None:
            return
        _, dispute_id, by_developer, _ = self.dispute
        who = self.client_id if by_developer else self.developer_id
        assert self.attempt(lambda s: self.disputes.add_evidence(s, dispute_id, who, "My side of it."))
        self.dispute[3] = True

    @rule(share=st.sampled_from([0.0, 0.6, 1.0]))
    def resolve(self, share: float) -> None:
        if self.dispute is None:
            return
        index, dispute_id = self.dispute[0], self.dispute[1]
        amount = int(self.in_escrow(index) * share)
        assert self.attempt(lambda s: self.disputes.resolve(s, dispute_id, None, amount, "Decided."))
        self._settled(index, amount)
        assert not self.attempt(lambda s: self.disputes.resolve(s, dispute_id, None, 0, "Again."))

    def _settled(self, index: int, to_developer: int) -> None:
        rest = self.in_escrow(index)
        if to_developer:
            self.released[index] += to_developer
            self.to_developer += to_developer - percent_of(to_developer, 1000)
        self.refunded[index] += rest - to_developer
        self.status[index] = M.APPROVED if to_developer else M.CANCELLED
        self.dispute = None

    @rule(days=st.sampled_from([1.0, 6.0, 15.0]))
    def time_passes(self, days: float) -> None:
        self.clock += days
        moment = utcnow() + timedelta(days=self.clock)
        before = list(self.status)
        self.run(self.site.timers.run_due(moment))
        if self.dispute is not None and not self.dispute[3] and self.clock >= 5:
            # No response within the window: the opener gets what they asked for.
            index, by_developer = self.dispute[0], self.dispute[2]
            self._settled(index, self.in_escrow(index) if by_developer else 0)
        for index, status in enumerate(before):
            # Submitted for 14 days: approved by the timer (when the clock passed 14 since),
            # unless the contract is in dispute (then it waits).
            if status == M.SUBMITTED and self.clock >= 14 and self.dispute is None:
                self.status[index] = M.APPROVED
                self._released(index, AMOUNTS[index] - self.released[index] - self.refunded[index])

    @rule(amount=st.integers(1_000, 60_000))
    def pay_out(self, amount: int) -> None:
        wallet = Wallet(self.site)

        async def go() -> bool:
            try:
                async with self.site.db.transaction() as session:
                    request = (await wallet.begin_payout(session, self.developer_id, PayoutIn(
                        amount=amount, currency="USD", payout_method_id=self.payout_method_id))).request
            except ClientException:
                return False
            result = await self.site.gateways.get("sandbox").payout(request)
            async with self.site.db.transaction() as session:
                settled = await wallet.settle_payout(session, request.reference, result.outcome,
                                                     gateway_ref=result.gateway_id)
            assert settled is not None
            assert settled.status == "succeeded"
            return True

        available = self.balance(Purpose.DEVELOPER_AVAILABLE)
        assert self.run(go()) == (amount <= available)
        if amount <= available:
            self.paid_out += amount

    # -- invariants ----------------------------------------------------------------------
    def balance(self, purpose: Purpose) -> int:
        async def read() -> int:
            async with self.site.db.reading() as session:
                return await self.ledger.balance(session, Account.user(self.developer_id, purpose, "USD"))

        return int(self.run(read()))

    @invariant()
    def the_books_balance(self) -> None:
        async def check() -> tuple[list[str], int]:
            async with self.site.db.reading() as session:
                problems = await self.ledger.verify(session)
                escrow = await self.ledger.balance(session, Account.escrow(self.contract_id, "USD"))
            return problems, escrow

        if not hasattr(self, "contract_id"):
            return
        problems, escrow = self.run(check())
        assert problems == []
        assert escrow == sum(self.in_escrow(i) for i in range(len(AMOUNTS)))
        held = self.balance(Purpose.DEVELOPER_PENDING) + self.balance(Purpose.DEVELOPER_AVAILABLE)
        assert held + self.paid_out == self.to_developer


def test_milestone_money_after_any_sequence_of_actions(migrated_settings: Any) -> None:
    with asyncio.Runner() as runner:
        MilestoneMoney.runner = runner
        MilestoneMoney.site = Site(migrated_settings)
        try:
            machine = MilestoneMoney.TestCase
            machine.settings = settings(max_examples=25, stateful_step_count=30, deadline=None,
                                        suppress_health_check=[HealthCheck.too_slow])
            machine().runTest()
        finally:
            runner.run(MilestoneMoney.site.db.dispose())
