"""What the platform earns: the fee policy (hook ``get_fee_policy``) and the built-in one.

Fees are whole minor units, computed with integer arithmetic only. A policy sees each money
movement on its own: the fee on a release is taken from what the developer receives; the fee
on a funding is paid by the client on top of the milestone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mercato.core.settings import PaymentsSettings

BASIS_POINTS = 10_000


@dataclass(frozen=True, slots=True)
class FeeContext:
    """What a fee may depend on."""

    amount: int
    """The milestone money moving, minor units."""
    currency: str
    contract_id: uuid.UUID
    client_id: uuid.UUID
    developer_id: uuid.UUID


@runtime_checkable
class FeePolicy(Protocol):
    """Returned by ``get_fee_policy``. Both methods return minor units, ``0 <= fee <= amount``."""

    def release_fee(self, context: FeeContext) -> int:
        """The platform's share of ``context.amount`` as it is released to the developer."""
        ...

    def client_fee(self, context: FeeContext) -> int:
        """What the client pays on top of ``context.amount`` when funding it."""
        ...


def percent_of(amount: int, basis_points: int) -> int:
    """``amount * basis_points / 10_000``, rounded half up, in integers."""
    return (amount * basis_points + BASIS_POINTS // 2) // BASIS_POINTS


@dataclass(frozen=True, slots=True)
class PercentageFees:
    """The built-in policy: ``[payments] developer_fee_percent`` and ``client_fee_percent``."""

    developer_bps: int
    client_bps: int

    @classmethod
    def from_settings(cls, settings: PaymentsSettings) -> PercentageFees:
        return cls(round(settings.developer_fee_percent * 100), round(settings.client_fee_percent * 100))

    def release_fee(self, context: FeeContext) -> int:
        return percent_of(context.amount, self.developer_bps)

    def client_fee(self, context: FeeContext) -> int:
        return percent_of(context.amount, self.client_bps)


def checked_fee(fee: object, amount: int, *, what: str) -> int:
    """A plugin's fee, refused unless it is an integer between 0 and ``amount``."""
    if type(fee) is not int or not 0 <= fee <= amount:
        raise ValueError(f"the fee policy's {what} must be an int from 0 to {amount}, not {fee!r}")
    return fee
