"""An order's life: the one place its status changes (checked by the state machine, kept in
the audit log), its lookups under lock, and what follows each ledger entry it writes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import SYSTEM, Actor
from app.core.money import format_minor
from app.credit_sync import service as credit_sync
from app.events.publish import defer_dashboard_update, defer_event, order_status_changed
from app.ledger import service as ledger_service
from app.metrics import rollup
from app.notifications import service as notification_service
from app.notifications.service import OutboxKind
from app.orders.models import Order
from app.orders.state import REVIEW, UNDECIDED, OrderStatus, check_transition
from app.shops.models import Shop

logger = logging.getLogger(__name__)


async def transition(
    session: AsyncSession,
    order: Order,
    target: OrderStatus,
    *,
    reason: str | None = None,
    actor: Actor = SYSTEM,
    action: str = "order.status_changed",
    details: dict[str, Any] | None = None,
) -> None:
    """The one place an order's status changes: checked by the state machine and kept in the
    audit log, which is also the order's history."""
    current = OrderStatus(order.status)
    if current == target and order.status_reason == reason and details is None:
        return
    check_transition(current, target)
    audit_service.record(
        session,
        shop_id=order.shop_id,
        actor=actor,
        action=action,
        subject_type="order",
        subject_id=order.id,
        before={"status": current},
        after={"status": target, **(details or {})},
        reason=reason,
    )
    now = datetime.now(UTC)
    if target in REVIEW and current not in REVIEW:
        order.review_started_at = now
    elif current in REVIEW and target not in REVIEW:
        order.decided_at = now
        if order.review_started_at is not None:
            took = (now - order.review_started_at).total_seconds()
            await rollup.review_decided(session, order.shop_id, took)
    if target == OrderStatus.rejected:
        await rollup.bump(session, order.shop_id, order.id, rejected=1)
    order.status = target
    order.status_reason = reason
    if current != target:
        await rollup.status_changed(session, order.shop_id, order.id, current, target)
        # The frontend's badges and figures, live (sent after the commit).
        defer_event(
            session,
            order.shop_id,
            order_status_changed(order.id, order.external_id, current, target, now),
        )
        defer_dashboard_update(session, order.shop_id)
    if target == OrderStatus.processed:
        order.processed_at = now


async def lock_order(session: AsyncSession, order_id: int) -> Order | None:
    result = await session.execute(select(Order).where(Order.id == order_id).with_for_update())
    return result.scalar_one_or_none()


async def find_order(
    session: AsyncSession, shop_id: int, external_id: str, *, lock: bool = False
) -> Order | None:
    stmt = select(Order).where(Order.shop_id == shop_id, Order.external_id == external_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def ledger_entry_written(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    entry_id: int,
    amount: int,
    *,
    expires_at: datetime | None = None,
) -> None:
    """What follows every credit and reversal: the push to the shop's store credit (or a
    skipped sync row for a ledger-only shop), and the customer's notice (a credit's with its
    expiry, when it has one)."""
    await credit_sync.schedule_sync(session, shop, entry_id)
    if notification_service.endpoint(shop, OutboxKind.customer_notice) is None:
        return
    assert order.customer_id is not None
    cur = order.currency
    balance = await ledger_service.balance(session, order.customer_id)
    await notification_service.enqueue_customer_notice(
        session,
        shop,
        event_key=f"entry:{entry_id}",
        event_type="cashback.credited" if amount > 0 else "cashback.reversed",
        payload={
            "order": {"id": str(order.id), "external_id": order.external_id, "name": order.name},
            "customer": {"id": order.customer_external_id, "email": order.email},
            "amount": format_minor(abs(amount), cur),
            "currency": cur,
            "balance": format_minor(balance, cur),
        }
        | ({"expires_at": expires_at.astimezone(UTC).isoformat()} if expires_at else {}),
    )


async def mark_failed(session: AsyncSession, order: Order, error: str) -> None:
    """Out of retries: the order is `failed` with its error, and the merchant is alerted (an
    undecided order, or a scheduled one whose credit could not be written)."""
    if order.status in UNDECIDED or order.status == OrderStatus.scheduled:
        order.last_error = error
        await transition(session, order, OrderStatus.failed, reason="processing failed")
        await alert(session, order, "failed", error)


async def alert(session: AsyncSession, order: Order, what: str, error: str) -> None:
    """Tell the merchant, once per order and `what` (`order.<what>`), with the error."""
    shop = await session.get_one(Shop, order.shop_id)
    await notification_service.enqueue_alert(
        session,
        shop,
        event_key=f"order:{order.id}:{what}",
        event_type=f"order.{what}",
        payload={
            "order": {"id": str(order.id), "external_id": order.external_id, "name": order.name},
            "error": error[:1000],
        },
    )
