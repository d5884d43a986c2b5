"""Customer notices and merchant alerts through the outbox.

A message is stored in the transaction that caused it, once per (shop, event key), and sent by
a job after the commit. The job claims the message in a short transaction, sends with no
transaction open, then records the outcome: delivery is at least once, and the stable
`webhook-id` lets the receiver drop a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.schedule import due_slot
from app.core.uow import defer_job
from app.notifications import delivery
from app.notifications.models import OutboxMessage, OutboxStatus
from app.orders.models import Order
from app.orders.state import OrderStatus
from app.shops.models import Shop
from app.shops.schedules import ReviewSchedule

SEND_JOB = "send_outbox_message"
REVIEW_DEADLINE_PASSED = "review.deadline_passed"
REVIEW_DUE = "review.due"
# A review call not made within this of its time (the workers were away) is skipped.
REVIEW_CALL_GRACE = timedelta(minutes=30)
REVIEW_QUEUE_PATH = "/v1/orders?status=pending,held&sort=created_at"

MAX_ATTEMPTS = 10
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=4)
# A claimed message is not due again before this; longer than the job may run (arq timeout).
CLAIM_LEASE = timedelta(minutes=2)


class OutboxKind(StrEnum):
    customer_notice = "customer_notice"
    alert = "alert"


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Claim:
    """One attempt at one message, taken by one job."""

    message_id: int
    attempt: int
    endpoint: Endpoint
    body: bytes

    @property
    def webhook_id(self) -> str:
        return delivery.webhook_id_for(self.message_id)


def outbox_job_id(message_id: int) -> str:
    return f"outbox:{message_id}"


def retry_delay(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed try: 1, 2, 4 … minutes, at most LONGEST_RETRY."""
    doubling: int = 2 ** (attempts - 1)
    return min(FIRST_RETRY * doubling, LONGEST_RETRY)


def endpoint(shop: Shop, kind: OutboxKind) -> Endpoint | None:
    """Where a message of `kind` goes now; None when the shop takes none."""
    if shop.uninstalled_at is not None or shop.outbound_webhook_secret is None:
        return None
    if kind is OutboxKind.customer_notice:
        url = shop.notification_webhook_url if shop.notify_customers else None
    else:
        url = shop.alert_webhook_url
    return Endpoint(url, shop.outbound_webhook_secret) if url else None


async def enqueue_customer_notice(
    session: AsyncSession,
    shop: Shop,
    *,
    event_key: str,
    event_type: str,
    payload: dict[str, Any],
) -> None:
    """Tell the customer (through the shop's notification webhook), once per event key."""
    await _enqueue(session, shop, OutboxKind.customer_notice, event_key, event_type, payload)


async def enqueue_alert(
    session: AsyncSession,
    shop: Shop,
    *,
    event_key: str,
    event_type: str,
    payload: dict[str, Any],
) -> None:
    """Tell the merchant (through the shop's alert webhook), once per event key."""
    await _enqueue(session, shop, OutboxKind.alert, event_key, event_type, payload)


async def _enqueue(
    session: AsyncSession,
    shop: Shop,
    kind: OutboxKind,
    event_key: str,
    event_type: str,
    payload: dict[str, Any],
) -> None:
    if endpoint(shop, kind) is None:
        return
    stmt = (
        insert(OutboxMessage)
        .values(
            shop_id=shop.id,
            kind=kind,
            event_key=event_key,
            event_type=event_type,
            payload=payload,
            status=OutboxStatus.pending,
        )
        .on_conflict_do_nothing(index_elements=[OutboxMessage.shop_id, OutboxMessage.event_key])
        .returning(OutboxMessage.id)
    )
    message_id = (await session.execute(stmt)).scalar_one_or_none()
    if message_id is not None:
        defer_job(session, SEND_JOB, message_id, job_id=outbox_job_id(message_id))


async def claim(session: AsyncSession, message_id: int) -> Claim | None:
    """Take a due message for one attempt. The lease keeps other jobs off it while the request
    is in flight; None when it is done, not due, or another job holds it."""
    row = (
        await session.execute(
            select(OutboxMessage, func.now())
            .where(
                OutboxMessage.id == message_id,
                OutboxMessage.status == OutboxStatus.pending,
                OutboxMessage.next_attempt_at <= func.now(),
            )
            .with_for_update(skip_locked=True, of=OutboxMessage)
        )
    ).one_or_none()
    if row is None:
        return None
    message, now = row
    shop = await session.get_one(Shop, message.shop_id)
    target = endpoint(shop, OutboxKind(message.kind))
    if target is None:
        _finish(message, OutboxStatus.failed, "the shop no longer takes these messages")
        return None
    if message.attempts >= MAX_ATTEMPTS:  # earlier tries ended without an outcome recorded
        _finish(message, OutboxStatus.failed, message.last_error or "no outcome recorded")
        return None
    message.attempts += 1
    message.next_attempt_at = now + CLAIM_LEASE
    body = delivery.render_body(message.event_type, message.created_at, message.payload)
    return Claim(message.id, message.attempts, target, body)


async def record(
    session: AsyncSession, claim: Claim, result: delivery.Result
) -> OutboxStatus | None:
    """Store what the attempt came to; None when a later attempt owns the message now."""
    row = (
        await session.execute(
            select(OutboxMessage, func.now())
            .where(
                OutboxMessage.id == claim.message_id,
                OutboxMessage.status == OutboxStatus.pending,
            )
            .with_for_update(of=OutboxMessage)
        )
    ).one_or_none()
    if row is None:
        return None
    message, now = row
    if result.outcome is delivery.Outcome.delivered:
        # Whichever attempt got through, the message reached the receiver.
        _finish(message, OutboxStatus.sent)
        message.sent_at = now
    elif message.attempts != claim.attempt:
        return None
    elif result.outcome is delivery.Outcome.rejected or message.attempts >= MAX_ATTEMPTS:
        _finish(message, OutboxStatus.failed, result.error)
    else:
        message.last_error = result.error
        message.next_attempt_at = now + retry_delay(message.attempts)
    return OutboxStatus(message.status)


def _finish(message: OutboxMessage, status: OutboxStatus, error: str | None = None) -> None:
    message.status = status
    message.last_error = error


async def due_messages(session: AsyncSession, limit: int) -> list[int]:
    """Pending messages whose next try is due; a claimed one is not due until its lease ends."""
    result = await session.scalars(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == OutboxStatus.pending,
            OutboxMessage.next_attempt_at <= func.now(),
        )
        .order_by(OutboxMessage.next_attempt_at)
        .limit(limit)
    )
    return list(result)


async def alert_overdue_reviews(session: AsyncSession) -> int:
    """Alert each shop whose oldest order waiting for review is past its review deadline, once
    per deadline-long window (see `review_alert_key`). Returns the number of shops overdue."""
    waiting_since = func.min(Order.review_started_at)
    oldest_order_id = func.array_agg(
        aggregate_order_by(Order.id, Order.review_started_at.asc().nulls_last(), Order.id)
    )[1]
    deadline = Shop.review_deadline_hours * timedelta(hours=1)
    rows = await session.execute(
        select(
            Shop,
            func.count().filter(Order.status == OrderStatus.pending),
            func.count().filter(Order.status == OrderStatus.held),
            waiting_since,
            oldest_order_id,
            func.now(),
        )
        .join(Order, Order.shop_id == Shop.id)
        .where(
            Shop.review_deadline_hours.is_not(None),
            Shop.alert_webhook_url.is_not(None),
            Shop.uninstalled_at.is_(None),
            Order.status.in_([OrderStatus.pending, OrderStatus.held]),
        )
        .group_by(Shop.id)
        .having(waiting_since < func.now() - deadline)
    )
    overdue = 0
    for shop, pending_count, held_count, oldest_started_at, oldest_id, now in rows:
        hours = shop.review_deadline_hours
        assert hours is not None  # filtered above
        await enqueue_alert(
            session,
            shop,
            event_key=review_alert_key(hours, now),
            event_type=REVIEW_DEADLINE_PASSED,
            payload={
                "pending_count": pending_count,
                "held_count": held_count,
                "oldest_order_id": str(oldest_id),
                "oldest_waiting_hours": (now - oldest_started_at) // timedelta(hours=1),
                "review_deadline_hours": hours,
            },
        )
        overdue += 1
    return overdue


def review_alert_key(deadline_hours: int, now: datetime) -> str:
    """At most one alert per shop per window of `deadline_hours`, counted from the Unix epoch;
    the unique event key dedupes it. While the queue stays overdue, each new window alerts again."""
    window = int(now.timestamp()) // (deadline_hours * 3600)
    return f"{REVIEW_DEADLINE_PASSED}:{deadline_hours}h:{window}"


def alerted_schedules(
    schedule: InstrumentedAttribute[dict[str, Any] | None],
) -> Select[tuple[int, str, dict[str, Any] | None]]:
    """(id, timezone, schedule) of the shops that set `schedule` and take alerts."""
    return select(Shop.id, Shop.timezone, schedule).where(
        schedule.is_not(None), Shop.alert_webhook_url.is_not(None), Shop.uninstalled_at.is_(None)
    )


async def call_due_reviews(session: AsyncSession, now: datetime, *, public_url: str | None) -> int:
    """The daily review call: each shop whose review slot has come (in its timezone, within
    REVIEW_CALL_GRACE) and whose queue held orders at that time gets one `review.due` alert
    per slot, however many workers ask (the event key is the slot). Returns the alerts
    enqueued or already there."""
    scheduled = await session.execute(alerted_schedules(Shop.review_schedule))
    called = 0
    for shop_id, timezone, stored in scheduled:
        schedule = ReviewSchedule.model_validate(stored)
        slot = due_slot(
            schedule.time_of_day, schedule.weekdays, ZoneInfo(timezone), now, REVIEW_CALL_GRACE
        )
        if slot is None:
            continue
        # The orders that waited at the slot's time and wait still.
        waiting = (
            await session.execute(
                select(
                    func.count().filter(Order.status == OrderStatus.pending),
                    func.count().filter(Order.status == OrderStatus.held),
                    func.min(Order.review_started_at),
                ).where(
                    Order.shop_id == shop_id,
                    Order.status.in_([OrderStatus.pending, OrderStatus.held]),
                    Order.review_started_at <= slot,
                )
            )
        ).one()
        pending_count, held_count, oldest = waiting
        if not pending_count + held_count:
            continue
        assert oldest is not None  # orders wait
        shop = await session.get_one(Shop, shop_id)
        await enqueue_alert(
            session,
            shop,
            event_key=f"{REVIEW_DUE}:{slot.isoformat()}",
            event_type=REVIEW_DUE,
            payload={
                "slot": slot.isoformat(),
                "local_time": schedule.at,
                "timezone": timezone,
                "waiting_count": pending_count + held_count,
                "pending_count": pending_count,
                "held_count": held_count,
                "oldest_waiting_since": oldest.isoformat(),
                "oldest_wait_minutes": (slot - oldest) // timedelta(minutes=1),
                "queue_url": (public_url or "").rstrip("/") + REVIEW_QUEUE_PATH,
            },
        )
        called += 1
    return called
