from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.core.money import format_minor
from app.core.pagination import decode_cursor, next_cursor
from app.ledger import service
from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.ledger.schemas import (
    CustomerRead,
    ExpiringCredit,
    LedgerEntryList,
    LedgerEntryRead,
    StorefrontBalance,
    StorefrontCashback,
)
from app.orders.models import Order


async def customer_of_shop(session: AsyncSession, shop_id: int, customer_id: int) -> Customer:
    """The shop's customer (another shop's id answers 404, like an unknown one)."""
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.shop_id == shop_id)
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def get_customer(
    session: AsyncSession, shop_id: int, currency: str, customer_id: int
) -> CustomerRead:
    customer = await customer_of_shop(session, shop_id, customer_id)
    return CustomerRead(
        id=str(customer.id),
        external_id=customer.external_id,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        balance=format_minor(await service.balance(session, customer.id), currency),
        currency=currency,
        expiring_soon=await _expiring_soon(session, customer.id, currency),
        created_at=customer.created_at,
    )


EXPIRING_SOON = timedelta(days=30)


async def _expiring_soon(
    session: AsyncSession, customer_id: int, currency: str
) -> ExpiringCredit | None:
    """What is left of the customer's credits that expire first (within 30 days)."""
    now = datetime.now(UTC)
    credits = list(
        await session.scalars(
            select(LedgerEntry)
            .where(
                LedgerEntry.customer_id == customer_id,
                LedgerEntry.kind == EntryKind.credit,
                LedgerEntry.expires_at > now,
                LedgerEntry.expires_at <= now + EXPIRING_SOON,
            )
            .order_by(LedgerEntry.expires_at, LedgerEntry.id)
        )
    )
    live = [c for c in await service.credits_left(session, credits) if c.left > 0]
    if not live:
        return None
    first = live[0].expires_at
    assert first is not None
    left = sum(c.left for c in live if c.expires_at == first)
    return ExpiringCredit(amount=format_minor(left, currency), expires_at=first)


async def list_ledger(
    session: AsyncSession, shop_id: int, customer_id: int, *, cursor: str | None, limit: int
) -> LedgerEntryList:
    customer = await customer_of_shop(session, shop_id, customer_id)
    stmt = select(LedgerEntry).where(LedgerEntry.customer_id == customer.id)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(LedgerEntry.id < after)
    entries = list(
        (await session.scalars(stmt.order_by(LedgerEntry.id.desc()).limit(limit + 1))).all()
    )
    return LedgerEntryList(
        items=[
            LedgerEntryRead(
                id=str(e.id),
                kind=e.kind,
                amount=format_minor(e.amount, e.currency),
                currency=e.currency,
                order_id=str(e.order_id) if e.order_id else None,
                reverses_entry_id=str(e.reverses_entry_id) if e.reverses_entry_id else None,
                expires_at=e.expires_at,
                redemption_id=str(e.redemption_id) if e.redemption_id else None,
                description=e.description,
                created_at=e.created_at,
            )
            for e in entries[:limit]
        ],
        next_cursor=next_cursor([e.id for e in entries], limit),
    )


STOREFRONT_RECENT = 10


async def storefront_balance(
    session: AsyncSession, shop_id: int, currency: str, customer_external_id: str | None
) -> StorefrontBalance:
    """A customer's balance and latest cashback, by the platform's customer id; a customer the
    ledger does not know has a zero balance."""
    if not customer_external_id:
        return StorefrontBalance(logged_in=False, balance=None, currency=currency, recent=[])
    customer_id = await session.scalar(
        select(Customer.id).where(
            Customer.shop_id == shop_id, Customer.external_id == customer_external_id
        )
    )
    if customer_id is None:
        zero = format_minor(0, currency)
        return StorefrontBalance(logged_in=True, balance=zero, currency=currency, recent=[])
    rows = await session.execute(
        select(LedgerEntry, Order.name)
        .outerjoin(Order, Order.id == LedgerEntry.order_id)
        .where(LedgerEntry.customer_id == customer_id)
        .order_by(LedgerEntry.id.desc())
        .limit(STOREFRONT_RECENT)
    )
    return StorefrontBalance(
        logged_in=True,
        balance=format_minor(await service.balance(session, customer_id), currency),
        currency=currency,
        recent=[
            StorefrontCashback(
                kind=entry.kind,
                amount=format_minor(entry.amount, entry.currency),
                order_name=order_name,
                created_at=entry.created_at,
            )
            for entry, order_name in rows
        ],
    )
