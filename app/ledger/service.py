from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.orders.domain import PlatformCustomer
from app.shops.models import Shop


async def upsert_customer(session: AsyncSession, shop_id: int, customer: PlatformCustomer) -> int:
    """Create or refresh the shop's customer by platform id; returns our id.

    A known customer whose details are unchanged is only read: no row lock, so transactions
    crediting orders of the same customer side by side do not wait for each other."""
    values = {
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
    }
    customers = cast(Table, Customer.__table__)  # Core, not the ORM: the hot path
    c = customers.c
    known = (
        await session.execute(
            select(c.id, c.email, c.first_name, c.last_name).where(
                c.shop_id == shop_id, c.external_id == customer.external_id
            )
        )
    ).one_or_none()
    if known is not None and tuple(known[1:]) == tuple(values.values()):
        return int(known[0])
    stmt = (
        insert(customers)
        .values(shop_id=shop_id, external_id=customer.external_id, **values)
        .on_conflict_do_update(
            index_elements=[c.shop_id, c.external_id],
            set_={**values, "updated_at": func.now()},
        )
        .returning(c.id)
    )
    return int((await session.execute(stmt)).scalar_one())


async def credit(
    session: AsyncSession,
    *,
    shop_id: int,
    customer_id: int,
    order_id: int,
    amount: int,
    currency: str,
    idempotency_key: str,
    description: str | None = None,
) -> int | None:
    """Append a credit entry; returns its id, or None when the key was already written."""
    return await _append(
        session,
        shop_id=shop_id,
        customer_id=customer_id,
        order_id=order_id,
        kind=EntryKind.credit,
        amount=amount,
        currency=currency,
        idempotency_key=idempotency_key,
        description=description,
    )


async def _append(session: AsyncSession, **values: object) -> int | None:
    """Insert an entry once per (shop, idempotency key): the only way entries are written."""
    entries = cast(Table, LedgerEntry.__table__)  # Core, not the ORM's bulk insert: the hot path
    stmt = (
        insert(entries)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[entries.c.shop_id, entries.c.idempotency_key])
        .returning(entries.c.id)
    )
    entry_id = (await session.execute(stmt)).scalar_one_or_none()
    return None if entry_id is None else int(entry_id)


async def balance(session: AsyncSession, customer_id: int) -> int:
    stmt = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.customer_id == customer_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def recent_credits(
    session: AsyncSession, customer_id: int, *, since: datetime
) -> tuple[int, int]:
    """(orders credited, cashback credited) for the customer since `since`."""
    row = (
        await session.execute(
            select(
                func.count(func.distinct(LedgerEntry.order_id)),
                func.coalesce(func.sum(LedgerEntry.amount), 0),
            ).where(
                LedgerEntry.customer_id == customer_id,
                LedgerEntry.kind == EntryKind.credit,
                LedgerEntry.created_at >= since,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def reverse(
    session: AsyncSession,
    *,
    shop: Shop,
    credit: LedgerEntry,
    amount: int,
    idempotency_key: str,
    description: str | None = None,
) -> int | None:
    """Append a reversal of part of `credit`; returns its id, or None if already written."""
    return await _append(
        session,
        shop_id=shop.id,
        customer_id=credit.customer_id,
        order_id=credit.order_id,
        kind=EntryKind.reversal,
        amount=-amount,
        currency=credit.currency,
        idempotency_key=idempotency_key,
        reverses_entry_id=credit.id,
        description=description,
    )
