"""Spending credit on a ledger-only shop: `POST /v1/customers/{id}/redemptions`.

A redemption is stored once per (shop, reference) and written as one `redemption` entry per
credit it spends, soonest-expiring first (`credits.spend`), under the row locks of the
customer's credits, so a redemption, an expiry and a reversal never take the same cents twice
and a balance never goes below zero. The same reference again answers the first redemption
(the same amount and customer) or 409. Shops that push credit to Shopify spend it at Shopify's
checkout instead: redemptions there are refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import ProblemError
from app.core.money import format_minor
from app.credit_sync import service as credit_sync
from app.ledger import queries
from app.ledger import service as ledger_service
from app.ledger.credits import NotEnoughCredit, spend, spend_amount
from app.ledger.models import EntryKind, LedgerEntry, Redemption
from app.ledger.schemas import RedeemedCredit, RedemptionRead, RedemptionRequest
from app.metrics import rollup
from app.shops.models import Shop


class InsufficientBalance(ProblemError):
    status, code, title = 409, "insufficient_balance", "The balance does not cover the amount"


class ReferenceReused(ProblemError):
    status, code, title = 409, "redemption_reference_reused", "The reference names another spend"


class SpentOnPlatform(ProblemError):
    status, code = 409, "credit_spent_on_platform"
    title = "This shop's credit is spent at the platform's checkout"


class InvalidRedemptionAmount(ProblemError):
    status, code, title = 422, "invalid_amount", "The amount is not allowed"


async def redeem(
    session: AsyncSession, shop: Shop, customer_id: int, request: RedemptionRequest
) -> RedemptionRead:
    customer = await queries.customer_of_shop(session, shop.id, customer_id)
    if credit_sync.pushes_store_credit(shop):
        raise SpentOnPlatform(
            "credit of this shop lives in Shopify's store credit: customers spend it at checkout"
        )
    amount = _minor(request.amount, shop.currency)
    inserted = await session.execute(
        insert(Redemption)
        .values(
            shop_id=shop.id,
            customer_id=customer.id,
            reference=request.reference,
            amount=amount,
            currency=shop.currency,
        )
        .on_conflict_do_nothing(index_elements=[Redemption.shop_id, Redemption.reference])
        .returning(Redemption.id)
    )
    redemption_id = inserted.scalar_one_or_none()
    if redemption_id is None:
        return await _replay(session, shop, customer.id, request.reference, amount)
    now = datetime.now(UTC)
    credits = await ledger_service.lock_credits(
        session,
        (LedgerEntry.customer_id == customer.id)
        & or_(LedgerEntry.expires_at.is_(None), LedgerEntry.expires_at >= now),
    )
    by_id = {c.id: c for c in credits}
    try:
        taken = spend(await ledger_service.credits_left(session, credits), amount, now)
    except NotEnoughCredit as exc:
        available = format_minor(exc.available, shop.currency)
        raise InsufficientBalance(
            f"the customer has {available} {shop.currency} to spend",
            balance=available,
            currency=shop.currency,
        ) from exc
    for credit_id, part in taken:
        entry_id = await ledger_service.consume(
            session,
            by_id[credit_id],
            EntryKind.redemption,
            part,
            idempotency_key=f"redemption:{redemption_id}:{credit_id}",
            description=f"Spent: {request.reference}"[:1000],
            redemption_id=redemption_id,
        )
        assert entry_id is not None, "a new redemption's entries are new"
        await credit_sync.schedule_sync(session, shop, entry_id)  # skipped: ledger only
    await rollup.bump(session, shop.id, customer.id, redeemed=amount)
    return await _read(session, shop, redemption_id)


async def _replay(
    session: AsyncSession, shop: Shop, customer_id: int, reference: str, amount: int
) -> RedemptionRead:
    first = await session.scalar(
        select(Redemption).where(Redemption.shop_id == shop.id, Redemption.reference == reference)
    )
    assert first is not None, "the conflicting redemption is committed"
    if first.customer_id != customer_id or first.amount != amount:
        raise ReferenceReused(
            f"reference {reference!r} was used for {format_minor(first.amount, first.currency)} "
            f"{first.currency} to customer {first.customer_id}"
        )
    return await _read(session, shop, first.id)


async def _read(session: AsyncSession, shop: Shop, redemption_id: int) -> RedemptionRead:
    redemption = await session.get_one(Redemption, redemption_id)
    entries = await session.execute(
        select(LedgerEntry.reverses_entry_id, LedgerEntry.amount)
        .where(LedgerEntry.redemption_id == redemption_id)
        .order_by(LedgerEntry.id)
    )
    cur = redemption.currency
    return RedemptionRead(
        id=str(redemption.id),
        customer_id=str(redemption.customer_id),
        reference=redemption.reference,
        amount=format_minor(redemption.amount, cur),
        currency=cur,
        balance=format_minor(await ledger_service.balance(session, redemption.customer_id), cur),
        spent=[
            RedeemedCredit(credit_entry_id=str(credit_id), amount=format_minor(-part, cur))
            for credit_id, part in entries
        ],
        created_at=redemption.created_at,
    )


def _minor(amount: Decimal, currency: str) -> int:
    try:
        return spend_amount(amount, currency)
    except ValueError as exc:
        raise InvalidRedemptionAmount(str(exc)) from exc
