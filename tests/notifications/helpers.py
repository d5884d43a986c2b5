"""Helpers the notification tests share: settings, enqueueing as callers do, outbox reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from app.core.uow import take_jobs, unit_of_work
from app.notifications import service
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from app.shops.models import Shop
from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack


async def configure(stack: Stack, shop: ShopHandle, **body: Any) -> str:
    """PATCH the shop's settings; returns the outbound webhook secret."""
    response = await stack.client.patch("/v1/shop/settings", headers=shop.auth, json=body)
    assert response.status_code == 200, response.text
    secret: str = response.json()["outbound_webhook_secret"]
    return secret


def credited_payload() -> dict[str, Any]:
    return {
        "order_id": "42",
        "order_name": "#1001",
        "customer_id": "7",
        "customer_email": "bob@example.com",
        "amount": "4.38",
        "currency": "USD",
        "balance": "12.50",
    }


async def enqueue_notice(
    stack: Stack, shop: ShopHandle, event_key: str = "credit:1", *, ring: bool = True
) -> None:
    """What the ledger does when it credits: enqueue inside its own unit of work. Without
    `ring`, the message is committed but its job never queued, as when Redis is away."""
    res = stack.resources
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        await service.enqueue_customer_notice(
            session,
            await session.get_one(Shop, shop.id),
            event_key=event_key,
            event_type="cashback.credited",
            payload=credited_payload(),
        )
        if not ring:
            take_jobs(session)


async def outbox(stack: Stack, shop: ShopHandle) -> list[OutboxMessage]:
    async with stack.resources.sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage).where(OutboxMessage.shop_id == shop.id).order_by(OutboxMessage.id)
        )
        return list(rows)


async def set_message(stack: Stack, message_id: int, **values: Any) -> None:
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
        )
        await session.commit()


async def make_due(stack: Stack, message_id: int) -> None:
    """Travel past the backoff: the message's next try is due now."""
    await set_message(stack, message_id, next_attempt_at=func.now())


async def db_now(stack: Stack) -> datetime:
    async with stack.resources.sessionmaker() as session:
        now: datetime = (await session.execute(select(func.now()))).scalar_one()
        return now


async def waiting_orders(stack: Stack, shop: ShopHandle, count: int) -> list[dict[str, Any]]:
    for _ in range(count):
        assert (await stack.deliver(shop, paid_order(id=new_order_id()))).status_code == 200
    await stack.run_worker()
    response = await stack.client.get("/v1/orders", headers=shop.auth)
    items: list[dict[str, Any]] = response.json()["items"]
    assert [o["status"] for o in items] == ["pending"] * count
    return items


async def waiting_since(stack: Stack, order_id: str, ago: timedelta) -> None:
    await started_waiting(stack, order_id, datetime.now(UTC) - ago)


async def started_waiting(stack: Stack, order_id: str, at: datetime) -> None:
    """Travel: the order entered the review queue at `at`."""
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Order).where(Order.id == int(order_id)).values(review_started_at=at)
        )
        await session.commit()
