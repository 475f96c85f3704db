"""Where a person's payouts go: bank accounts registered with a payment gateway.

The gateway keeps the account details (:meth:`PaymentGateway.add_payout_method`); mercato keeps
only its token and a label safe to show, in ``payout_methods``. A payout names one of the
person's own methods by id; anyone else's is a 404, as if it did not exist.

Registering talks to the gateway outside any database transaction, with the new method's id as
its reference, so a retry after a crash registers the same account, never a second one.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import msgspec
import structlog
from litestar.exceptions import HTTPException, NotFoundException
from sqlalchemy import func, select

from mercato.core.errors import field_error
from mercato.core.pagination import newest_first
from mercato.core.payments.gateways import (
    Capability,
    GatewayError,
    InvalidPayoutMethod,
    PayoutMethodRequest,
    UnknownGateway,
)
from mercato.core.payments.models import PayoutMethod
from mercato.core.states import InvalidTransition

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.payments.gateways import PaymentGateway
    from mercato.core.site import Site

log = structlog.get_logger("mercato.payments")

MAX_PAYOUT_METHODS = 10
"""How many payout methods one person may keep."""


class PayoutMethodIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A bank account to pay out to, registered with ``gateway``."""

    account_number: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    """As printed on a statement; spaces and dashes are ignored (sandbox: ``000123456789``)."""
    gateway: str | None = None
    """A gateway id; by default ``[payments] default_gateway``."""


class PayoutMethodOut(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    gateway: str
    label: str
    """Safe to show: ``Bank account ••6789``."""
    created_at: datetime


class PayoutMethodPage(msgspec.Struct, kw_only=True):
    items: list[PayoutMethodOut]
    next_cursor: str | None


class PaymentProviderUnavailable(HTTPException):
    """503: the gateway could not be reached; nothing was saved, so trying again is safe."""

    status_code = 503


def method_out(method: PayoutMethod) -> PayoutMethodOut:
    return PayoutMethodOut(id=method.id, gateway=method.gateway, label=method.label,
                           created_at=method.created_at)


class PayoutMethods:
    def __init__(self, site: Site) -> None:
        self.site = site

    def payout_gateway(self, gateway_id: str | None) -> PaymentGateway:
        """The gateway a payout method is registered with (400 naming ``gateway`` when there is
        no such gateway or it does not pay out)."""
        try:
            gateway = self.site.gateways.get(gateway_id or self.site.settings.payments.default_gateway)
        except UnknownGateway as exc:
            raise field_error("gateway", str(exc)) from None
        if Capability.PAYOUT not in gateway.capabilities:
            raise field_error("gateway", f"{gateway.name} does not make payouts.")
        return gateway

    async def page(self, session: AsyncSession, user_id: uuid.UUID, *, limit: int,
                   cursor: str | None) -> PayoutMethodPage:
        query = select(PayoutMethod).where(PayoutMethod.user_id == user_id)
        rows, next_cursor = await newest_first(session, query, moment=PayoutMethod.created_at,
                                               row_id=PayoutMethod.id, cursor=cursor, limit=limit)
        return PayoutMethodPage(items=[method_out(m) for m in rows], next_cursor=next_cursor)

    async def owned(self, session: AsyncSession, user_id: uuid.UUID, method_id: uuid.UUID) -> PayoutMethod:
        """One of ``user_id``'s payout methods; 404 for anyone else's."""
        method = await session.get(PayoutMethod, method_id)
        if method is None or method.user_id != user_id:
            raise NotFoundException("No such payout method.")
        return method

    async def add(self, user_id: uuid.UUID, data: PayoutMethodIn) -> PayoutMethod:
        """Register the account with its gateway, then keep the gateway's token. 400 naming the
        field the gateway refuses; 409 past :data:`MAX_PAYOUT_METHODS`; 503 when the gateway
        cannot be reached."""
        gateway = self.payout_gateway(data.gateway)
        async with self.site.db.reading() as session:
            count = await session.scalar(
                select(func.count()).select_from(PayoutMethod).where(PayoutMethod.user_id == user_id))
        if (count or 0) >= MAX_PAYOUT_METHODS:
            raise InvalidTransition(f"You can keep at most {MAX_PAYOUT_METHODS} payout methods; "
                                    "remove one you no longer use first.")
        method_id = uuid.uuid4()
        request = PayoutMethodRequest(reference=f"pm_{method_id.hex}", owner=str(user_id),
                                      account_number=data.account_number)
        try:
            result = await gateway.add_payout_method(request)
        except InvalidPayoutMethod as exc:
            raise field_error(exc.field, exc.message) from None
        except GatewayError as exc:
            log.warning("payout method not registered", gateway=gateway.id, error=repr(exc))
            raise PaymentProviderUnavailable(
                f"{gateway.name} could not be reached; nothing was saved. Try again in a minute."
            ) from None
        method = PayoutMethod(id=method_id, user_id=user_id, gateway=gateway.id, token=result.token,
                              label=result.label[:100])
        async with self.site.db.transaction() as session:
            session.add(method)
        return method

    async def remove(self, user_id: uuid.UUID, method_id: uuid.UUID) -> None:
        """Forget one of ``user_id``'s payout methods (404 for anyone else's). Payouts already
        made to it keep its label on their receipts."""
        async with self.site.db.transaction() as session:
            await session.delete(await self.owned(session, user_id, method_id))
