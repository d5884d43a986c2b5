"""The inbox is the same for every topic: a topic is one entry in `app.shopify.topics.TOPICS`
and one domain call, and nothing else in the path needs to know it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.inbox.models import EventStatus, WebhookEvent
from app.shopify import topics
from app.shopify.topics import Incoming, Topic
from app.shops.models import Shop
from tests.payloads import new_order_id, paid_order
from tests.support import Stack


async def statuses(stack: Stack) -> dict[str, str]:
    async with stack.resources.sessionmaker() as session:
        events = await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
        return {event.topic: event.status for event in events}


async def test_a_new_topic_is_one_entry_in_the_table_and_its_handler(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, str, dict[str, Any]]] = []

    async def fulfilled(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
        seen.append((shop.id, incoming.event.topic, incoming.payload))
        return EventStatus.processed

    shop = await stack.create_shop()
    order_id = new_order_id()
    # Before it is listed, a topic is stored and ignored: never lost, never an error.
    await stack.deliver(shop, {"id": 1, "order_id": order_id}, topic="fulfillments/create")
    await stack.run_worker()
    assert await statuses(stack) == {"fulfillments/create": "ignored"}

    monkeypatch.setitem(topics.TOPICS, "fulfillments/create", Topic(fulfilled, "order_id"))
    fulfilment = {"id": 2, "order_id": order_id, "status": "success"}
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.deliver(shop, fulfilment, topic="fulfillments/create")
    await stack.run_worker()

    assert seen == [(shop.id, "fulfillments/create", fulfilment)]
    order = await stack.order(shop, order_id)
    assert order["status"] == "processed"  # the order's own topic still goes its way
    assert await statuses(stack) == {"fulfillments/create": "processed", "orders/paid": "processed"}
