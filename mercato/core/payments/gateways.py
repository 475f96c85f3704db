"""Payment gateways: the protocol a gateway plugin implements, and dispatch by id.

A gateway moves money between the outside world and the platform: it charges a client's
payment method, refunds a charge, and pays a developer out. mercato never trusts a gateway's
answer alone for money that arrives later: a charge that is not settled at once is confirmed
by the gateway's signed webhook (:meth:`PaymentGateway.parse_webhook`), and the same
confirmation may arrive any number of times.

Every request carries ``reference``, mercato's own id for the operation; a gateway must treat
a repeated reference as the same operation (as Stripe treats an idempotency key), so a retry
after a crash never charges or pays twice.

Payout destinations are registered with the gateway first
(:meth:`PaymentGateway.add_payout_method`): the gateway keeps the bank details and answers a
token, and mercato keeps only that token and a label safe to show.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Capability(StrEnum):
    CHARGE = "charge"
    REFUND = "refund"
    PAYOUT = "payout"
    WEBHOOKS = "webhooks"


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    """Accepted; the result comes later by webhook."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    reference: str
    """mercato's id for this charge; the same reference is the same charge."""
    amount: int
    currency: str
    payment_method: str
    """A card number, a token or a saved method, as the gateway understands it."""
    description: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    reference: str
    charge_id: str
    """The gateway's id of the charge being refunded."""
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class PayoutRequest:
    reference: str
    amount: int
    currency: str
    destination: str
    """A payout method registered with the gateway (its token)."""


@dataclass(frozen=True, slots=True)
class PayoutMethodRequest:
    reference: str
    """mercato's id for the payout method; the same reference is the same method."""
    owner: str
    """Whose it is (mercato's user id), for the gateway's records."""
    account_number: str
    """The bank account number as the person typed it."""


@dataclass(frozen=True, slots=True)
class PayoutMethodResult:
    """A payout destination the gateway now knows."""

    token: str
    """What :class:`PayoutRequest` ``destination`` names it by; the only thing mercato stores."""
    label: str
    """Safe to show: never the whole number (``Bank account ••6789``)."""


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """What a gateway says about an operation."""

    outcome: Outcome
    gateway_id: str
    """The gateway's own id for the operation ('' when it refused before creating one)."""
    message: str = ""
    """Why it failed, in words fit to show the payer."""
    card_last4: str = ""
    """For a charge: the last four digits of the card, when the gateway knows them (receipts)."""


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified notification from a gateway about an earlier operation."""

    id: str
    """The gateway's event id (a replay of it is ignored)."""
    kind: str
    """``charge``, ``refund`` or ``payout``."""
    reference: str
    """mercato's reference from the request."""
    gateway_id: str
    outcome: Outcome
    message: str = ""


class GatewayError(Exception):
    """The gateway could not be reached or answered nonsense; the operation's state is unknown
    and is settled later by its webhook or by asking again with the same reference."""


class InvalidWebhook(Exception):
    """A webhook whose signature, timestamp or body is wrong: forged, replayed or garbled."""


class InvalidPayoutMethod(ValueError):
    """The gateway refuses the details of a payout method; the API answers 400 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        """The request field at fault (``account_number``)."""
        self.message = message
        """What is wrong, in words fit to show the person who typed it."""


@runtime_checkable
class PaymentGateway(Protocol):
    """What ``register_payment_gateways`` returns: one object per gateway."""

    id: str
    """Short, stable, unique: stored with every payment (``sandbox``, ``stripe``)."""
    name: str
    """Shown to people choosing how to pay."""
    capabilities: frozenset[Capability]
    currencies: frozenset[str]

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        """Charge ``request.payment_method``. ``PENDING`` when the result comes by webhook."""
        ...

    async def refund(self, request: RefundRequest) -> GatewayResult: ...

    async def payout(self, request: PayoutRequest) -> GatewayResult:
        """Pay ``request.amount`` to the payout method whose token is ``request.destination``."""
        ...

    async def add_payout_method(self, request: PayoutMethodRequest) -> PayoutMethodResult:
        """Register a payout destination and answer its token and a label safe to show. Raise
        :class:`InvalidPayoutMethod` for details the gateway refuses, :class:`GatewayError` when
        it cannot tell. A gateway without :attr:`Capability.PAYOUT` is never asked."""
        ...

    async def retrieve(self, kind: str, reference: str) -> GatewayResult | None:
        """The current state of an earlier operation, by mercato's reference (None: unknown)."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify and read a webhook; raise :class:`InvalidWebhook` for anything not genuine."""
        ...


class UnknownGateway(LookupError):
    pass


class Gateways:
    """The site's gateways by id."""

    def __init__(self, gateways: list[PaymentGateway]) -> None:
        self._by_id: dict[str, PaymentGateway] = {}
        for gateway in gateways:
            if not isinstance(gateway, PaymentGateway):
                raise TypeError(f"{gateway!r} does not implement the PaymentGateway protocol")
            if gateway.id in self._by_id:
                raise ValueError(f"two plugins register the payment gateway {gateway.id!r}")
            self._by_id[gateway.id] = gateway

    def get(self, gateway_id: str) -> PaymentGateway:
        try:
            return self._by_id[gateway_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id)) or "none"
            raise UnknownGateway(f"no payment gateway {gateway_id!r} (installed: {known})") from None

    def __iter__(self) -> Iterator[PaymentGateway]:
        return iter(self._by_id.values())

    def __contains__(self, gateway_id: object) -> bool:
        return gateway_id in self._by_id
