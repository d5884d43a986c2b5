"""Review deadline alerts: the cron finds overdue review queues and alerts once per window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from app.notifications import tasks
from app.orders.models import Order
from app.shops.models import ProcessingMode
from tests.notifications.helpers import configure, outbox
from tests.notifications.receiver import Receiver, verify_signature
from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack


async def waiting_orders(stack: Stack, shop: ShopHandle, count: int) -> list[dict[str, Any]]:
    for _ in range(count):
        assert (await stack.deliver(shop, paid_order(id=new_order_id()))).status_code == 200
    await stack.run_worker()
    response = await stack.client.get("/v1/orders", headers=shop.auth)
    items: list[dict[str, Any]] = response.json()["items"]
    assert [o["status"] for o in items] == ["pending"] * count
    return items


async def waiting_since(stack: Stack, order_id: str, ago: timedelta) -> None:
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Order)
            .where(Order.id == int(order_id))
            .values(review_started_at=datetime.now(UTC) - ago)
        )
        await session.commit()


async def test_an_overdue_review_queue_alerts_once(stack: Stack, receiver: Receiver) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    secret = await configure(
        stack, shop, alert_webhook_url=receiver.url("/alerts"), review_deadline_hours=2
    )
    first, second = await waiting_orders(stack, shop, 2)
    held = await stack.client.post(
        f"/v1/orders/{second['id']}/hold", headers=shop.auth, json={"reason": "check address"}
    )
    assert held.status_code == 200, held.text
    await waiting_since(stack, first["id"], timedelta(hours=3))
    await waiting_since(stack, second["id"], timedelta(hours=5, minutes=30))

    ctx = {"resources": stack.resources}
    assert await tasks.check_review_deadlines(ctx) == 1
    assert await tasks.check_review_deadlines(ctx) == 1  # still overdue, same window
    await stack.run_worker()

    [message] = await outbox(stack, shop)
    assert (message.kind, message.status) == ("alert", "sent")
    assert message.event_key.startswith("review.deadline_passed:2h:")
    [received] = receiver.requests
    verify_signature(secret, received)
    assert received.json["type"] == "review.deadline_passed"
    assert received.json["data"] == {
        "pending_count": 1,
        "held_count": 1,
        "oldest_order_id": second["id"],
        "oldest_waiting_hours": 5,
        "review_deadline_hours": 2,
    }


async def test_no_alert_before_the_deadline_or_without_one(
    stack: Stack, receiver: Receiver
) -> None:
    on_time = await stack.create_shop(mode=ProcessingMode.manual)
    await configure(
        stack, on_time, alert_webhook_url=receiver.url("/alerts"), review_deadline_hours=2
    )
    [order] = await waiting_orders(stack, on_time, 1)
    await waiting_since(stack, order["id"], timedelta(hours=1, minutes=50))

    no_deadline = await stack.create_shop(mode=ProcessingMode.manual)
    await configure(stack, no_deadline, alert_webhook_url=receiver.url("/alerts"))
    [order] = await waiting_orders(stack, no_deadline, 1)
    await waiting_since(stack, order["id"], timedelta(days=30))

    no_url = await stack.create_shop(mode=ProcessingMode.manual)
    await configure(stack, no_url, review_deadline_hours=1)
    [order] = await waiting_orders(stack, no_url, 1)
    await waiting_since(stack, order["id"], timedelta(days=30))

    assert await tasks.check_review_deadlines({"resources": stack.resources}) == 0
    for shop in (on_time, no_deadline, no_url):
        assert await outbox(stack, shop) == []
