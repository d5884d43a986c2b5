"""Read side of orders for the API: listing, one order with its lines and history."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.errors import NotFound
from app.core.money import format_minor
from app.core.pagination import decode_cursor, next_cursor
from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.orders.holds import account_problem
from app.orders.models import Order, OrderLine
from app.orders.review import allowed_actions
from app.orders.schemas import (
    CustomerHistory,
    OrderCounts,
    OrderEventRead,
    OrderLineRead,
    OrderList,
    OrderPaymentsRead,
    OrderRead,
    OrderSummary,
)
from app.orders.service import PAYMENTS_NEED_REVIEW
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


def _summary(
    order: Order, totals: tuple[int, int], history: CustomerHistory | None = None
) -> OrderSummary:
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
        hold_reasons=order.hold_reasons,
        review_started_at=order.review_started_at,
        customer_history=history,
        version=order.version,
        created_at=order.created_at,
        updated_at=order.updated_at,
        processed_at=order.processed_at,
    )


async def _customer_histories(
    session: AsyncSession, shop_id: int, customer_ids: set[int], currency: str
) -> dict[int, CustomerHistory]:
    """Orders, credited and reversed totals per customer, in two grouped queries, and the
    standing of each account."""
    if not customer_ids:
        return {}
    standing = {
        customer_id: (verified, state)
        for customer_id, verified, state in await session.execute(
            select(Customer.id, Customer.verified_email, Customer.account_state).where(
                Customer.id.in_(customer_ids)
            )
        )
    }
    count_rows = await session.execute(
        select(Order.customer_id, func.count())
        .where(Order.shop_id == shop_id, Order.customer_id.in_(customer_ids))
        .group_by(Order.customer_id)
    )
    counts = {customer_id: int(n) for customer_id, n in count_rows}
    money = {
        row[0]: (int(row[1]), int(row[2]))
        for row in await session.execute(
            select(
                LedgerEntry.customer_id,
                func.coalesce(
                    func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == EntryKind.credit), 0
                ),
                func.coalesce(
                    -func.sum(LedgerEntry.amount).filter(LedgerEntry.kind == EntryKind.reversal),
                    0,
                ),
            )
            .where(LedgerEntry.customer_id.in_(customer_ids))
            .group_by(LedgerEntry.customer_id)
        )
    }
    return {
        cid: CustomerHistory(
            orders=int(counts.get(cid, 0)),
            credited_amount=format_minor(money.get(cid, (0, 0))[0], currency),
            reversed_amount=format_minor(money.get(cid, (0, 0))[1], currency),
            verified_email=standing.get(cid, (None, None))[0],
            account_state=standing.get(cid, (None, None))[1],
            account_problem=account_problem(*standing.get(cid, (None, None))),
        )
        for cid in customer_ids
    }


async def count_by_status(session: AsyncSession, shop_id: int) -> OrderCounts:
    rows = await session.execute(
        select(Order.status, func.count()).where(Order.shop_id == shop_id).group_by(Order.status)
    )
    found = {OrderStatus(status): int(n) for status, n in rows}
    return OrderCounts(counts={status: found.get(status, 0) for status in OrderStatus})


async def list_orders(
    session: AsyncSession,
    shop_id: int,
    *,
    statuses: Sequence[OrderStatus] = (),
    external_id: str | None = None,
    name: str | None = None,
    customer_id: int | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
    oldest_first: bool = False,
) -> OrderList:
    stmt = select(Order).where(Order.shop_id == shop_id)
    if statuses:
        stmt = stmt.where(Order.status.in_(statuses))
    if external_id is not None:
        stmt = stmt.where(Order.external_id == external_id)
    if name is not None:
        stmt = stmt.where(Order.name == name)
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Order.id > after if oldest_first else Order.id < after)
    order_by = Order.id.asc() if oldest_first else Order.id.desc()
    orders = list((await session.scalars(stmt.order_by(order_by).limit(limit + 1))).all())
    page = orders[:limit]
    totals = await _ledger_totals(session, [o.id for o in page])
    histories = (
        await _customer_histories(
            session, shop_id, {o.customer_id for o in page if o.customer_id}, page[0].currency
        )
        if page
        else {}
    )
    return OrderList(
        items=[
            _summary(
                o,
                totals.get(o.id, (0, 0)),
                histories.get(o.customer_id) if o.customer_id else None,
            )
            for o in page
        ],
        next_cursor=next_cursor([o.id for o in orders], limit),
    )


async def get_order(session: AsyncSession, shop_id: int, order_id: int) -> OrderRead:
    order = await session.scalar(
        select(Order).where(Order.id == order_id, Order.shop_id == shop_id)
    )
    if order is None:
        raise NotFound(f"order {order_id} not found")
    return await read_order(session, order)


def payments_read(order: Order) -> OrderPaymentsRead:
    snapshot = order.snapshot or {}
    gateways = list(snapshot.get("credit_gateways") or [])
    credit = snapshot.get("paid_with_credit_amount", 0)
    read = order.payments if order.payments and credit is not None else None
    status: Literal["none", "read", "payload", "waiting", "needs_review"]
    if credit is None:
        status = "needs_review" if PAYMENTS_NEED_REVIEW in order.hold_reasons else "waiting"
    elif read is not None:
        status = "read"
    else:
        status = "payload" if gateways else "none"
    cur = order.currency
    return OrderPaymentsRead(
        status=status,
        currency=cur,
        credit_gateways=gateways,
        paid_with_credit_amount=None if credit is None else format_minor(int(credit), cur),
        gift_card_amount=format_minor(int(read["gift_card"]), cur) if read else None,
        store_credit_amount=format_minor(int(read["store_credit"]), cur) if read else None,
        read_at=datetime.fromisoformat(read["read_at"]) if read else None,
    )


async def read_order(session: AsyncSession, order: Order) -> OrderRead:
    lines = (
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    ).all()
    history = (
        await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.subject_type == "order", AuditEvent.subject_id == order.id)
            .order_by(AuditEvent.id)
        )
    ).all()
    totals = (await _ledger_totals(session, [order.id])).get(order.id, (0, 0))
    histories = (
        await _customer_histories(session, order.shop_id, {order.customer_id}, order.currency)
        if order.customer_id
        else {}
    )
    program_version = (
        await session.scalar(
            select(ProgramVersion.version).where(ProgramVersion.id == order.program_version_id)
        )
        if order.program_version_id
        else None
    )
    cur = order.currency
    return OrderRead(
        **_summary(
            order, totals, histories.get(order.customer_id) if order.customer_id else None
        ).model_dump(),
        financial_status=order.financial_status,
        test=order.test,
        eligible_amount=format_minor(order.eligible_amount, cur),
        program_version=program_version,
        last_error=order.last_error,
        review_note=order.review_note,
        decided_at=order.decided_at,
        award_amount=(
            format_minor(order.award_amount, cur) if order.award_amount is not None else None
        ),
        award_at=order.award_at,
        allowed_actions=allowed_actions(order),
        payments=payments_read(order),
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
            OrderEventRead(
                action=event.action,
                from_status=(event.before or {}).get("status"),
                to_status=(event.after or {}).get("status"),
                reason=event.reason,
                actor=event.actor,
                at=event.created_at,
            )
            for event in history
        ],
    )
