"""Helpers the notification tests share: settings, enqueueing as callers do, outbox reads."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from app.kit.queue import take_deferred
from app.kit.uow import unit_of_work
from app.notifications import service
from app.notifications.models import OutboxMessage
from app.shops.models import Shop
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
    async with unit_of_work(res.sessionmaker, res.doorbell) as session:
        await service.enqueue_customer_notice(
            session,
            await session.get_one(Shop, shop.id),
            event_key=event_key,
            event_type="cashback.credited",
            payload=credited_payload(),
        )
        if not ring:
            take_deferred(session)


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
