"""The theme's wallet pages: balances and history (``/wallet``), the payout form, payout methods,
and a printable receipt for every movement of money.

Money is typed in major units (``250``, ``62.50``) and stored in minor units. Forms that fail
re-render with the input kept and the message next to the field (400; 404, 409 or 402 when
the wallet or the gateway refuses). Someone else's payout method or receipt is a 404.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from litestar import get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template
from sqlalchemy import select

from mercato.core.accounts.forms import (
    CURRENCY_SYMBOLS,
    AnyRequest,
    Page,
    errors_of,
    form_text,
    format_amount,
    parse_rate,
    redirect,
    to_login,
)
from mercato.core.accounts.middleware import principal_of
from mercato.core.accounts.routes import require_principal
from mercato.core.catalog.display import format_money, plain_errors
from mercato.core.contracts.milestones import HOLD_END
from mercato.core.contracts.models import Contract
from mercato.core.ledger.models import LedgerAccount, LedgerEntry, LedgerTransaction, Purpose
from mercato.core.payments.gateways import Capability
from mercato.core.payments.models import PaymentStatus
from mercato.core.payments.payout_methods import MAX_PAYOUT_METHODS, PayoutMethodIn, PayoutMethods
from mercato.core.payments.receipts import Receipts, format_moment
from mercato.core.payments.wallet import KIND_LABELS, Balance, PayoutIn, Wallet, owner_of
from mercato.core.timers.models import Timer

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from mercato.core.site import Site

PAGE_SIZE = 20
MAX_PAYOUT_MINOR = 10_000_000_00
"""The largest amount the payout form reads (the balance decides what is allowed)."""
BALANCE_LABELS = {
    Purpose.DEVELOPER_AVAILABLE: "Available",
    Purpose.DEVELOPER_PENDING: "Pending",
    Purpose.ESCROW: "In escrow",
    Purpose.CLIENT_FUNDING: "Refunds",
}
PAYMENT_STATUS_LABELS = {"pending": "Pending", "succeeded": "Paid", "failed": "Failed"}
_CURRENCY = re.compile(r"[A-Z]{3}")
_NOTICES = {
    "paid": ("success", "Your payout is sent. Its receipt is at the top of your history."),
    "payout-pending": ("info", "Your payout is on its way: the payment provider has not confirmed it yet. "
                               "Its receipt shows where it stands."),
    "method-added": ("success", "Payout method added. You can now pay out to it."),
    "method-removed": ("success", "Payout method removed. Payouts already made to it are not affected."),
}


def money_text(minor: int, currency: str) -> str:
    """Two decimals always, as a statement reads (``$1,500.00``, ``CHF 62.50``)."""
    whole, cents = divmod(abs(minor), 100)
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = f"{whole:,}.{cents:02d}"
    sign = "\u2212" if minor < 0 else ""
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{currency} {amount}"


def signed_money(minor: int, currency: str) -> str:
    """``+$360`` or ``\u2212$400`` (a minus sign): how a movement changed a balance."""
    return ("+" if minor > 0 else "\u2212") + format_money(abs(minor), currency)


def day(moment: datetime) -> str:
    """``30 Nov 2026``."""
    return f"{moment.day} {moment.strftime('%b %Y')}"


def helpers() -> dict[str, Any]:
    """Formatting every wallet template may call."""
    return {
        "money": format_money,
        "money_text": money_text,
        "signed_money": signed_money,
        "moment": format_moment,
        "day": day,
        "balance_labels": BALANCE_LABELS,
        "kind_labels": KIND_LABELS,
        "payment_status_labels": PAYMENT_STATUS_LABELS,
    }


async def render(request: AnyRequest, site: Site, template: str, values: dict[str, Any], *,
                 status_code: int = 200) -> Template:
    """A themed page (``wallet/<template>``)."""
    return await site.templates.page(request, f"wallet/{template}", {**helpers(), **values},
                                     status_code=status_code)


async def pending_holds(session: AsyncSession, user_id: uuid.UUID) -> dict[str, list[tuple[int, datetime]]]:
    """Released money still on hold, by currency: ``[(amount, available at)]``, soonest first."""
    rows = await session.execute(
        select(LedgerEntry.currency, LedgerEntry.amount, Timer.due_at)
        .join(LedgerTransaction, LedgerTransaction.idempotency_key == Timer.ref)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(Timer.kind == HOLD_END, LedgerAccount.owner == owner_of(user_id),
               LedgerAccount.purpose == Purpose.DEVELOPER_PENDING, LedgerEntry.amount > 0)
        .order_by(Timer.due_at)
    )
    holds: dict[str, list[tuple[int, datetime]]] = {}
    for currency, amount, due_at in rows:
        holds.setdefault(currency, []).append((amount, due_at))
    return holds


def _filters(currency: str | None, kind: str | None) -> tuple[str | None, str | None]:
    """Filters from the query string; anything that is not one is ignored, as a browser would."""
    return (currency if currency and _CURRENCY.fullmatch(currency) else None,
            kind if kind in KIND_LABELS else None)


def _query(**values: str | None) -> str:
    found = {name: value for name, value in values.items() if value}
    return f"?{urlencode(found)}" if found else ""


# ---------------------------------------------------------------------------
# The wallet
# ---------------------------------------------------------------------------


@get("/wallet", include_in_schema=False, name="wallet:home")
async def wallet_page(
    request: AnyRequest,
    site: NamedDependency[Site],
    currency: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    done: FromQuery[str | None] = None,
) -> Template:
    """Balances by currency, payout methods at a glance, and the history with its filters."""
    principal = require_principal(request)
    currency, kind = _filters(currency, kind)
    wallet = Wallet(site)
    async with site.db.reading() as session:
        balances = (await wallet.balances(session, principal.user_id)).balances
        history = await wallet.transactions(session, principal.user_id, limit=PAGE_SIZE,
                                            cursor=cursor or None, currency=currency, kind=kind)
        holds = await pending_holds(session, principal.user_id)
        methods = (await PayoutMethods(site).page(session, principal.user_id, limit=MAX_PAYOUT_METHODS,
                                                  cursor=None)).items
        contract_ids = {uuid.UUID(t.contract_id) for t in history.items if t.contract_id}
        contract_titles = {str(contract_id): title for contract_id, title in await session.execute(
            select(Contract.id, Contract.title).where(Contract.id.in_(contract_ids)))} if contract_ids else {}
    notice = _NOTICES.get(done or "")
    filtered = bool(currency or kind)
    return await render(request, site, "wallet.html", {
        "balances": balances,
        "holds": holds,
        "can_pay_out": any(b.available for b in balances),
        "methods": methods,
        "history": history.items,
        "contract_titles": contract_titles,
        "currency": currency or "",
        "kind": kind or "",
        "currencies": sorted({b.currency for b in balances} | ({currency} if currency else set())),
        "filtered": filtered,
        "paged": bool(cursor),
        "first_url": "/wallet" + _query(currency=currency, kind=kind),
        "next_url": ("/wallet" + _query(currency=currency, kind=kind, cursor=history.next_cursor)
                     if history.next_cursor else ""),
        "csv_url": "/api/v1/wallet/transactions.csv" + _query(currency=currency, kind=kind),
        "notices": [notice] if notice else [],
        "hold_days": site.settings.payments.payout_hold_days,
    })


# ---------------------------------------------------------------------------
# Paying out
# ---------------------------------------------------------------------------


def _available(balances: list[Balance]) -> dict[str, int]:
    return {b.currency: b.available for b in balances if b.available > 0}


async def payout_page(request: AnyRequest, site: Site, *, form: dict[str, str] | None = None,
                      errors: dict[str, str] | None = None, problem: str = "",
                      status_code: int = 200) -> Template:
    """``wallet/payout.html``: the form, with what was typed and what is wrong with it."""
    principal = require_principal(request)
    async with site.db.reading() as session:
        balances = (await Wallet(site).balances(session, principal.user_id)).balances
        methods = (await PayoutMethods(site).page(session, principal.user_id, limit=MAX_PAYOUT_METHODS,
                                                  cursor=None)).items
    available = _available(balances)
    first = next(iter(available), "")
    values = {
        "currency": first,
        "amount": format_amount(available[first]).replace(",", "") if first else "",
        "payout_method_id": str(methods[0].id) if methods else "",
        **(form or {}),
    }
    minimum = site.settings.payments.min_payout
    return await render(request, site, "payout.html", {
        "form": values,
        "errors": errors or {},
        "problem": problem,
        "available": available,
        "methods": methods,
        "minimums": {currency: format_money(minimum, currency) for currency in available},
        "symbols": CURRENCY_SYMBOLS,
        "hold_days": site.settings.payments.payout_hold_days,
    }, status_code=status_code)


@get("/wallet/payout", include_in_schema=False, name="wallet:payout-form")
async def payout_form(request: AnyRequest, site: NamedDependency[Site]) -> Template:
    return await payout_page(request, site)


@post("/wallet/payout", include_in_schema=False, name="wallet:payout")
async def send_payout(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Pay part of the available balance to a saved payout method; the gateway's refusal is shown
    on the form (402), with the money back in the balance."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/wallet/payout")
    form = await request.form()
    values = {name: form_text(form, name) for name in ("amount", "currency", "payout_method_id")}
    async with site.db.reading() as session:
        available = _available((await Wallet(site).balances(session, principal.user_id)).balances)
    errors: dict[str, str] = {}
    currency = values["currency"]
    if currency not in available:
        errors["currency"] = "Choose a currency you have money available in."
    money, problem = parse_rate(values["amount"], currency or "USD", maximum=MAX_PAYOUT_MINOR)
    minimum = site.settings.payments.min_payout
    if problem:
        errors["amount"] = problem
    elif money is None:
        errors["amount"] = "Enter how much to pay out."
    elif "currency" not in errors and money["amount"] > available[currency]:
        errors["amount"] = f"You have {format_money(available[currency], currency)} available to pay out."
    elif money["amount"] < minimum:
        errors["amount"] = f"The smallest payout is {format_money(minimum, currency or 'USD')}."
    try:
        method_id = uuid.UUID(values["payout_method_id"])
    except ValueError:
        errors["payout_method_id"] = "Choose where the money goes."
    if errors:
        return await payout_page(request, site, form=values, errors=errors, status_code=400)
    assert money is not None
    try:
        payment = await Wallet(site).pay_out(principal.user_id, PayoutIn(
            amount=money["amount"], currency=currency, payout_method_id=method_id))
    except NotFoundException:
        errors["payout_method_id"] = "Choose one of your payout methods."
        return await payout_page(request, site, form=values, errors=errors, status_code=400)
    except HTTPException as exc:  # a race for the balance, or a currency the gateway does not pay
        found = plain_errors(errors_of(exc, default_field="amount"))
        return await payout_page(request, site, form=values, errors=found, status_code=exc.status_code)
    if payment.status == PaymentStatus.FAILED:
        problem = (f"Your payout was refused. {payment.message} "
                   "The money is back in your available balance; try another payout method.")
        return await payout_page(request, site, form=values, problem=problem, status_code=402)
    done = "paid" if payment.status == PaymentStatus.SUCCEEDED else "payout-pending"
    return redirect(f"/wallet?done={done}")


# ---------------------------------------------------------------------------
# Payout methods
# ---------------------------------------------------------------------------


async def methods_page(request: AnyRequest, site: Site, *, form: dict[str, str] | None = None,
                       errors: dict[str, str] | None = None, notices: list[tuple[str, str]] | None = None,
                       status_code: int = 200) -> Template:
    """``wallet/payout_methods.html``: the saved methods, each with a Remove button, and the
    form to add one."""
    principal = require_principal(request)
    async with site.db.reading() as session:
        methods = (await PayoutMethods(site).page(session, principal.user_id, limit=MAX_PAYOUT_METHODS,
                                                  cursor=None)).items
    gateways = [(g.id, g.name) for g in site.gateways if Capability.PAYOUT in g.capabilities]
    values = {"account_number": "", "gateway": site.settings.payments.default_gateway, "next": "",
              **(form or {})}
    return await render(request, site, "payout_methods.html", {
        "methods": methods,
        "gateways": gateways,
        "gateway_names": dict(gateways),
        "form": values,
        "errors": errors or {},
        "notices": notices or [],
        "max_methods": MAX_PAYOUT_METHODS,
    }, status_code=status_code)


@get("/wallet/payout-methods", include_in_schema=False, name="wallet:payout-methods")
async def payout_methods_page(request: AnyRequest, site: NamedDependency[Site],
                              done: FromQuery[str | None] = None,
                              then: Annotated[str | None, QueryParameter(name="next")] = None) -> Template:
    """Your payout methods and the form to add one (``?next=payout``: back to the payout form)."""
    notice = _NOTICES.get(done or "")
    return await methods_page(request, site, notices=[notice] if notice else None,
                              form={"next": "payout" if then == "payout" else ""})


@post("/wallet/payout-methods", include_in_schema=False, name="wallet:payout-method-add")
async def add_payout_method(request: AnyRequest, site: NamedDependency[Site]) -> Page:
    """Register a bank account with the gateway; its refusal shows next to the field."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/wallet/payout-methods")
    form = await request.form()
    values = {name: form_text(form, name) for name in ("account_number", "gateway", "next")}
    errors: dict[str, str] = {}
    if not values["account_number"].strip():
        errors["account_number"] = "Enter the account number."
    else:
        try:
            await PayoutMethods(site).add(principal.user_id, PayoutMethodIn(
                account_number=values["account_number"][:64], gateway=values["gateway"] or None))
        except HTTPException as exc:
            if exc.status_code in (401, 404):
                raise
            errors = plain_errors(errors_of(exc, default_field="account_number"))
            return await methods_page(request, site, form=values, errors=errors, status_code=exc.status_code)
    if errors:
        return await methods_page(request, site, form=values, errors=errors, status_code=400)
    if values["next"] == "payout":
        return redirect("/wallet/payout")
    return redirect("/wallet/payout-methods?done=method-added")


@post("/wallet/payout-methods/{payout_method_id:uuid}/delete", include_in_schema=False,
      name="wallet:payout-method-remove")
async def remove_payout_method(request: AnyRequest, payout_method_id: FromPath[uuid.UUID],
                               site: NamedDependency[Site]) -> Page:
    """Forget one of your payout methods (404 for anyone else's)."""
    principal = principal_of(request)
    if principal is None:
        return to_login("/wallet/payout-methods")
    await PayoutMethods(site).remove(principal.user_id, payout_method_id)
    return redirect("/wallet/payout-methods?done=method-removed")


# ---------------------------------------------------------------------------
# Receipts
# ---------------------------------------------------------------------------


@get("/wallet/receipts/{transaction_id:uuid}", include_in_schema=False, name="wallet:receipt")
async def receipt_page(request: AnyRequest, transaction_id: FromPath[uuid.UUID],
                       site: NamedDependency[Site]) -> Template:
    """A printable receipt of one movement, for the people it concerns (404 for anyone else)."""
    principal = require_principal(request)
    receipt = await Receipts(site).receipt(principal.user_id, transaction_id)
    return await render(request, site, "receipt.html", {"receipt": receipt})


PAGE_ROUTES: list[Any] = [
    wallet_page,
    payout_form,
    send_payout,
    payout_methods_page,
    add_payout_method,
    remove_payout_method,
    receipt_page,
]
"""The wallet pages the payments plugin registers."""
