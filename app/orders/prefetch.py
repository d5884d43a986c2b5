"""What a batch of order snapshots reads and inserts, done once for the batch.

Handling an order snapshot on its own costs a handful of round trips: insert the order unless
known, lock it, read the catalog facts of its products, read (or write) its customer, look for
refunds that wait for it. A worker draining a flood does these once per batch instead, a
statement for all the batch's orders each, and keeps what it found in the session for the
handlers (`ingest_order`, `enrich`, `upsert_customer`, `has_waiting`), which fall back to
their own statement for anything the batch did not foresee. The handlers stay the one path:
the batch only answers their questions ahead of time, within the same transaction and locks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog_service
from app.core.snapshots import PlatformOrder
from app.core.uow import Part, uow_of
from app.ledger import service as ledger_service
from app.orders.models import Order
from app.orders.refund_models import Refund
from app.orders.state import UNDECIDED, OrderStatus
from app.shops.models import Shop


@dataclass
class BatchOrders(Part):
    """What a batch found for its orders: each locked order and whether the batch inserted it,
    by (shop, external id); and whether refunds wait for it."""

    locked: dict[tuple[int, str], tuple[Order, bool]] = field(default_factory=dict)
    waiting: dict[tuple[int, str], bool] = field(default_factory=dict)


async def prefetch(session: AsyncSession, shop: Shop, snapshots: Sequence[PlatformOrder]) -> None:
    """Insert the orders of `snapshots` not known yet, lock them all, and read their catalog
    facts, customers and waiting refunds, for the rest of this transaction.

    Orders are inserted in (shop, external id) order and locked in id order, as every batch
    does, so batches running side by side wait for each other instead of deadlocking."""
    valid = [s for s in snapshots if s.currency == shop.currency]  # others fail, insert nothing
    if not valid:
        return
    external_ids = sorted({s.external_id for s in valid})
    fresh = await _insert_orders(session, shop, external_ids)
    locked = await session.scalars(_LOCK_ORDERS, {"shop": shop.id, "ids": external_ids})
    known = uow_of(session).open(BatchOrders).locked
    for order in locked:
        known[shop.id, order.external_id] = (order, order.external_id in fresh)
    await catalog_service.prefetch_products(
        session, shop.id, {line.product_id for s in valid for line in s.lines if line.product_id}
    )
    customers = {s.customer.external_id: s.customer for s in reversed(valid) if s.customer}
    await ledger_service.prefetch_customers(session, shop.id, list(customers.values()))
    # Ids for the credits the batch may write (paid snapshots of undecided orders), drawn in
    # one statement.
    may_credit = {
        s.external_id
        for s in valid
        if s.paid
        and s.cancelled_at is None
        and s.customer is not None
        and (found := known.get((shop.id, s.external_id))) is not None
        and found[0].status in UNDECIDED
    }
    await ledger_service.reserve_credit_ids(session, len(may_credit))
    await _prefetch_waiting_refunds(session, shop.id, external_ids)


_orders = cast(Table, Order.__table__)  # Core, not the ORM's bulk insert: the hot path
# Statements built once: built per batch, they cost more client CPU than their round trips.
_INSERT_ORDER = (
    insert(_orders)
    .values(
        shop_id=bindparam("order_shop"),
        external_id=bindparam("order_external_id"),
        currency=bindparam("order_currency"),
        status=OrderStatus.received,
        version=1,
    )
    .on_conflict_do_nothing(index_elements=[_orders.c.shop_id, _orders.c.external_id])
    .returning(_orders.c.external_id)
)
_LOCK_ORDERS = (
    select(Order)
    .where(
        Order.shop_id == bindparam("shop"), Order.external_id.in_(bindparam("ids", expanding=True))
    )
    .order_by(Order.id)
    .with_for_update()
)
_WAITING_REFUNDS = (
    select(Refund.order_external_id)
    .where(
        Refund.shop_id == bindparam("shop"),
        Refund.order_external_id.in_(bindparam("ids", expanding=True)),
        Refund.applied_at.is_(None),
    )
    .distinct()
)


async def _insert_orders(session: AsyncSession, shop: Shop, external_ids: list[str]) -> set[str]:
    rows = [
        {"order_shop": shop.id, "order_external_id": external_id, "order_currency": shop.currency}
        for external_id in external_ids
    ]
    return set((await session.execute(_INSERT_ORDER, rows)).scalars())


def take_order(session: AsyncSession, shop_id: int, external_id: str) -> tuple[Order, bool] | None:
    """The locked order this batch prefetched, and whether this transaction inserted it; the
    insert is reported once, to the first snapshot of the order that asks."""
    batch = uow_of(session).get(BatchOrders)
    known = None if batch is None else batch.locked
    if known is None or (shop_id, external_id) not in known:
        return None
    order, fresh = known[shop_id, external_id]
    if fresh:
        known[shop_id, external_id] = (order, False)
    return order, fresh


async def _prefetch_waiting_refunds(
    session: AsyncSession, shop_id: int, external_ids: list[str]
) -> None:
    waiting = set(await session.scalars(_WAITING_REFUNDS, {"shop": shop_id, "ids": external_ids}))
    checked = uow_of(session).open(BatchOrders).waiting
    for external_id in external_ids:
        checked[shop_id, external_id] = external_id in waiting


def known_waiting(session: AsyncSession, shop_id: int, order_external_id: str) -> bool | None:
    """Whether refunds wait for the order, as this batch found; None when it did not look."""
    batch = uow_of(session).get(BatchOrders)
    return None if batch is None else batch.waiting.get((shop_id, order_external_id))


def refund_stored(session: AsyncSession, shop_id: int, order_external_id: str) -> None:
    """A refund was stored in this transaction: its order has a waiting refund now."""
    batch = uow_of(session).get(BatchOrders)
    if batch is not None:
        batch.waiting[shop_id, order_external_id] = True
