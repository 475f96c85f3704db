"""The built-in fee policy: integer arithmetic, rounded half up, never more than the amount."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mercato.core.payments.fees import FeeContext, PercentageFees, checked_fee, percent_of
from mercato.core.settings import PaymentsSettings


def context(amount: int) -> FeeContext:
    return FeeContext(amount=amount, currency="USD", contract_id=uuid.uuid4(), client_id=uuid.uuid4(),
                      developer_id=uuid.uuid4())


def test_defaults_take_ten_percent_from_the_developer_and_nothing_from_the_client() -> None:
    policy = PercentageFees.from_settings(PaymentsSettings())
    assert policy.release_fee(context(15_000)) == 1_500
    assert policy.client_fee(context(15_000)) == 0


@pytest.mark.parametrize(("amount", "percent", "fee"), [
    (1, 10.0, 0), (5, 10.0, 1), (4, 10.0, 0), (15, 10.0, 2), (999, 12.5, 125), (1_000_001, 2.9, 29_000),
])
def test_rounding_is_half_up_in_integers(amount: int, percent: float, fee: int) -> None:
    settings = PaymentsSettings(developer_fee_percent=percent, client_fee_percent=percent)
    policy = PercentageFees.from_settings(settings)
    assert policy.release_fee(context(amount)) == fee
    assert policy.client_fee(context(amount)) == fee


@given(st.integers(min_value=0, max_value=10**15), st.integers(min_value=0, max_value=5_000))
def test_a_fee_is_never_negative_nor_more_than_the_amount(amount: int, bps: int) -> None:
    fee = percent_of(amount, bps)
    assert 0 <= fee <= amount
    assert abs(fee * 10_000 - amount * bps) <= 5_000  # within half a minor unit


@pytest.mark.parametrize("fee", [-1, 101, 1.5, "10", None, True])
def test_a_plugins_nonsense_fee_is_refused(fee: object) -> None:
    with pytest.raises(ValueError, match="fee policy"):
        checked_fee(fee, 100, what="release fee")
    assert checked_fee(100, 100, what="release fee") == 100
