"""Review deadline alerts: the cron finds overdue review queues and alerts once per window."""

from __future__ import annotations

from datetime import timedelta

from app.notifications import tasks
from app.shops.models import ProcessingMode
from tests.notifications.helpers import configure, outbox, waiting_orders, waiting_since
from tests.notifications.receiver import Receiver, verify_signature
from tests.support import Stack


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
