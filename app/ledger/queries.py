from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.errors import NotFound
from app.kit.money import format_minor
from app.kit.pagination import decode_cursor, next_cursor
from app.ledger import service
from app.ledger.models import Customer, LedgerEntry
from app.ledger.schemas import CustomerRead, LedgerEntryList, LedgerEntryRead


async def _customer(session: AsyncSession, shop_id: int, customer_id: int) -> Customer:
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.shop_id == shop_id)
    )
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


async def get_customer(
    session: AsyncSession, shop_id: int, currency: str, customer_id: int
) -> CustomerRead:
    customer = await _customer(session, shop_id, customer_id)
    return CustomerRead(
        id=str(customer.id),
        external_id=customer.external_id,
        email=customer.email,
        first_name=customer.first_name,
        last_name=customer.last_name,
        balance=format_minor(await service.balance(session, customer.id), currency),
        currency=currency,
        created_at=customer.created_at,
    )


async def list_ledger(
    session: AsyncSession, shop_id: int, customer_id: int, *, cursor: str | None, limit: int
) -> LedgerEntryList:
    customer = await _customer(session, shop_id, customer_id)
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
                description=e.description,
                created_at=e.created_at,
            )
            for e in entries[:limit]
        ],
        next_cursor=next_cursor([e.id for e in entries], limit),
    )
