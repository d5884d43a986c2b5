"""Read side of orders for the API: listing, one order with its lines and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.errors import NotFound
from app.kit.money import format_minor
from app.kit.pagination import decode_cursor, next_cursor
from app.ledger.models import EntryKind, LedgerEntry
from app.orders.models import Order, OrderLine, OrderStatusChange
from app.orders.schemas import (
    OrderLineRead,
    OrderList,
    OrderRead,
    OrderSummary,
    StatusChangeRead,
)
from app.orders.state import OrderStatus
from app.program.models import ProgramVersion


async def _ledger_totals(
    session: AsyncSession, order_ids: Sequence[int]
) -> dict[int, tuple[int, int]]:
    """(credited, reversed) per order, summed from the ledger: never a stored copy."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(
            LedgerEntry.order_id,
            func.coalesce(
                func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == EntryKind.credit), 0
            ),
            func.coalesce(
                -func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == EntryKind.reversal), 0
            ),
        )
        .where(LedgerEntry.order_id.in_(order_ids))
        .group_by(LedgerEntry.order_id)
    )
    return {
        order_id: (int(credited), int(reversed_))
        for order_id, credited, reversed_ in rows
        if order_id is not None
    }


def _summary(order: Order, totals: tuple[int, int]) -> OrderSummary:
    cur = order.currency
    return OrderSummary(
        id=str(order.id),
        external_id=order.external_id,
        name=order.name,
        status=OrderStatus(order.status),
        status_reason=order.status_reason,
        currency=cur,
        total_amount=format_minor(order.total_amount, cur),
        cashback_amount=format_minor(order.cashback_amount, cur),
        credited_amount=format_minor(totals[0], cur),
        reversed_amount=format_minor(totals[1], cur),
        customer_id=str(order.customer_id) if order.customer_id else None,
        created_at=order.created_at,
        updated_at=order.updated_at,
        processed_at=order.processed_at,
    )


async def list_orders(
    session: AsyncSession,
    shop_id: int,
    *,
    statuses: Sequence[OrderStatus] = (),
    external_id: str | None = None,
    customer_id: int | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> OrderList:
    stmt = select(Order).where(Order.shop_id == shop_id)
    if statuses:
        stmt = stmt.where(Order.status.in_(statuses))
    if external_id is not None:
        stmt = stmt.where(Order.external_id == external_id)
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Order.id < after)
    orders = list((await session.scalars(stmt.order_by(Order.id.desc()).limit(limit + 1))).all())
    page = orders[:limit]
    totals = await _ledger_totals(session, [o.id for o in page])
    return OrderList(
        items=[_summary(o, totals.get(o.id, (0, 0))) for o in page],
        next_cursor=next_cursor([o.id for o in orders], limit),
    )


async def get_order(session: AsyncSession, shop_id: int, order_id: int) -> OrderRead:
    order = await session.scalar(
        select(Order).where(Order.id == order_id, Order.shop_id == shop_id)
    )
    if order is None:
        raise NotFound(f"order {order_id} not found")
    lines = (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    ).all()
    history = (
        await session.scalars(
            select(OrderStatusChange)
            .where(OrderStatusChange.order_id == order.id)
            .order_by(OrderStatusChange.id)
        )
    ).all()
    totals = (await _ledger_totals(session, [order.id])).get(order.id, (0, 0))
    program_version = (
        await session.scalar(
            select(ProgramVersion.version).where(ProgramVersion.id == order.program_version_id)
        )
        if order.program_version_id
        else None
    )
    cur = order.currency
    return OrderRead(
        **_summary(order, totals).model_dump(),
        financial_status=order.financial_status,
        test=order.test,
        eligible_amount=format_minor(order.eligible_amount, cur),
        program_version=program_version,
        last_error=order.last_error,
        version=order.version,
        lines=[
            OrderLineRead(
                external_id=line.external_id,
                title=line.title,
                product_id=line.product_id,
                variant_id=line.variant_id,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=format_minor(line.unit_price, cur),
                discount_amount=format_minor(line.discount_amount, cur),
                gift_card=line.gift_card,
                eligible_amount=format_minor(line.eligible_amount, cur),
                rate=f"{line.rate.normalize():f}",
                rate_source=line.rate_source,
                campaigns=line.campaigns,
                cashback_amount=format_minor(line.cashback_amount, cur),
                reason=line.reason,
            )
            for line in lines
        ],
        history=[
            StatusChangeRead(
                from_status=OrderStatus(h.from_status) if h.from_status else None,
                to_status=OrderStatus(h.to_status),
                reason=h.reason,
                actor=h.actor,
                at=h.created_at,
            )
            for h in history
        ],
    )
