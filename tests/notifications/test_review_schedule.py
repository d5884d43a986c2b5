"""The daily review call: at the shop's local review time, a `review.due` alert when orders
wait, once per slot (however many workers ask), none when the queue is empty. The cron is run
with the instant it would run at; the real worker sends what it enqueued."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from app.core.resources import Resources
from app.notifications import tasks
from app.shops.models import ProcessingMode
from tests.notifications.helpers import configure, outbox, started_waiting, waiting_orders
from tests.notifications.receiver import Receiver, verify_signature
from tests.support import ShopHandle, Stack

EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def scheduled_shop(
    stack: Stack, receiver: Receiver, timezone: str, at: str, weekdays: list[str]
) -> tuple[ShopHandle, str]:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    secret = await configure(
        stack,
        shop,
        timezone=timezone,
        alert_webhook_url=receiver.url(f"/alerts/{shop.id}"),
        review_schedule={"at": at, "weekdays": weekdays},
    )
    return shop, secret


async def call(stack: Stack, now: datetime, resources: Resources | None = None) -> int:
    return await tasks.call_review_queues({"resources": resources or stack.resources}, now)


def messages(receiver: Receiver, shop: ShopHandle) -> list[dict[str, Any]]:
    return [r.json for r in receiver.requests if r.path == f"/alerts/{shop.id}"]


async def test_the_review_call_comes_once_at_the_local_time_across_the_spring_jump(
    stack: Stack, receiver: Receiver
) -> None:
    # New York jumps from 02:00 EST to 03:00 EDT on 2026-03-08: 02:30 never shows that night,
    # and the call comes where it would have been, 07:30 UTC (03:30 EDT).
    shop, secret = await scheduled_shop(stack, receiver, "America/New_York", "02:30", EVERY_DAY)
    first, second = await waiting_orders(stack, shop, 2)
    await started_waiting(stack, first["id"], datetime(2026, 3, 7, 12, 0, tzinfo=UTC))
    await started_waiting(stack, second["id"], datetime(2026, 3, 8, 7, 0, tzinfo=UTC))

    assert await call(stack, datetime(2026, 3, 8, 6, 30, 15, tzinfo=UTC)) == 0  # not 02:30 EDT
    assert await call(stack, datetime(2026, 3, 8, 7, 29, tzinfo=UTC)) == 0
    assert await call(stack, datetime(2026, 3, 8, 7, 30, 15, tzinfo=UTC)) == 1
    assert await call(stack, datetime(2026, 3, 8, 7, 45, tzinfo=UTC)) == 1  # same slot
    assert await call(stack, datetime(2026, 3, 8, 8, 0, tzinfo=UTC)) == 0  # past its grace
    await stack.run_worker()

    [message] = receiver.requests
    verify_signature(secret, message)
    assert message.json["type"] == "review.due"
    assert message.json["data"] == {
        "slot": "2026-03-08T07:30:00+00:00",
        "local_time": "02:30",
        "timezone": "America/New_York",
        "waiting_count": 2,
        "pending_count": 2,
        "held_count": 0,
        "oldest_waiting_since": "2026-03-07T12:00:00+00:00",
        "oldest_wait_minutes": 19 * 60 + 30,  # 12:00 to 07:30 UTC the next day
        "queue_url": "/v1/orders?status=pending,held&sort=created_at",
    }
    # The next day, 02:30 EDT is 06:30 UTC.
    assert await call(stack, datetime(2026, 3, 9, 6, 30, tzinfo=UTC)) == 1
    assert [m.event_key for m in await outbox(stack, shop)] == [
        "review.due:2026-03-08T07:30:00+00:00",
        "review.due:2026-03-09T06:30:00+00:00",
    ]


async def test_midnight_in_tokyo_and_in_new_york_in_one_run(
    stack: Stack, receiver: Receiver
) -> None:
    # Mondays at 00:00: in Tokyo that is Sunday 15:00 UTC, in New York Monday 05:00 UTC.
    tokyo, _ = await scheduled_shop(stack, receiver, "Asia/Tokyo", "00:00", ["mon"])
    new_york, _ = await scheduled_shop(stack, receiver, "America/New_York", "00:00", ["mon"])
    [early, late] = await waiting_orders(stack, tokyo, 2)
    [waiting] = await waiting_orders(stack, new_york, 1)
    tokyo_midnight = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    await started_waiting(stack, early["id"], tokyo_midnight - timedelta(hours=3))
    # Entered the queue after the call's time: not part of this call.
    await started_waiting(stack, late["id"], tokyo_midnight + timedelta(seconds=10))
    await started_waiting(stack, waiting["id"], tokyo_midnight - timedelta(days=1))

    assert await call(stack, tokyo_midnight - timedelta(seconds=30)) == 0  # Sunday 23:59:30
    assert await call(stack, tokyo_midnight + timedelta(seconds=20)) == 1  # Tokyo only
    ny_midnight = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
    assert await call(stack, ny_midnight + timedelta(seconds=20)) == 1  # New York only
    await stack.run_worker()

    [to_tokyo] = messages(receiver, tokyo)
    assert to_tokyo["data"]["slot"] == "2026-11-22T15:00:00+00:00"
    assert (to_tokyo["data"]["waiting_count"], to_tokyo["data"]["oldest_wait_minutes"]) == (1, 180)
    [to_new_york] = messages(receiver, new_york)
    assert to_new_york["data"]["slot"] == "2026-11-23T05:00:00+00:00"
    assert to_new_york["data"]["oldest_wait_minutes"] == (24 + 14) * 60


async def test_no_call_when_the_queue_is_empty_or_no_call_is_scheduled(
    stack: Stack, receiver: Receiver
) -> None:
    empty, _ = await scheduled_shop(stack, receiver, "Europe/Berlin", "09:00", EVERY_DAY)
    unscheduled = await stack.create_shop(mode=ProcessingMode.manual)
    await configure(stack, unscheduled, alert_webhook_url=receiver.url("/alerts/none"))
    [order] = await waiting_orders(stack, unscheduled, 1)
    nine = datetime(2026, 11, 24, 8, 0, 30, tzinfo=UTC)  # 09:00 CET
    await started_waiting(stack, order["id"], nine - timedelta(days=2))

    assert await call(stack, nine) == 0
    off = await stack.client.patch(
        "/v1/shop/settings", headers=empty.auth, json={"review_schedule": None}
    )
    assert off.status_code == 200 and off.json()["review_schedule"] is None
    await stack.run_worker()
    assert receiver.requests == []
    assert await outbox(stack, empty) == [] and await outbox(stack, unscheduled) == []


async def test_two_workers_at_one_slot_send_one_message(stack: Stack, receiver: Receiver) -> None:
    shop, _ = await scheduled_shop(stack, receiver, "America/New_York", "09:00", EVERY_DAY)
    [order] = await waiting_orders(stack, shop, 1)
    nine = datetime(2026, 11, 24, 14, 0, 5, tzinfo=UTC)  # 09:00 EST
    await started_waiting(stack, order["id"], nine - timedelta(hours=1))
    # A second worker process: its own connection pool and Redis connection.
    other = Resources.open(stack.settings)
    try:
        both = await asyncio.gather(call(stack, nine), call(stack, nine, other))
    finally:
        await other.close()
    assert list(both) == [1, 1]  # each saw the slot due; the event key let one message through
    await stack.run_worker()
    assert len(await outbox(stack, shop)) == 1
    [message] = receiver.requests
    assert message.json["data"]["waiting_count"] == 1


async def test_the_schedule_is_a_setting_read_back_as_written(stack: Stack) -> None:
    shop = await stack.create_shop()
    response = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth,
        json={"review_schedule": {"at": "09:30", "weekdays": ["fri", "mon", "mon"]}},
    )
    assert response.status_code == 200, response.text
    assert response.json()["review_schedule"] == {"at": "09:30", "weekdays": ["mon", "fri"]}
    default = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"review_schedule": {"at": "08:00"}}
    )
    assert default.json()["review_schedule"]["weekdays"] == ["mon", "tue", "wed", "thu", "fri"]
    for bad in ({"at": "24:00"}, {"at": "9:00"}, {"at": "09:00", "weekdays": []}):
        refused = await stack.client.patch(
            "/v1/shop/settings", headers=shop.auth, json={"review_schedule": bad}
        )
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_error"), bad
