"""Floods of duplicates through the real API and real workers: one credit per order, no 5xx.

Shopify delivers at least once, retries on its own schedule and may send one order under many
event ids (orders/create, orders/paid, orders/updated), concurrently or days apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select, update

from app.inbox.models import WebhookEvent
from tests.payloads import new_order_id, paid_order
from tests.reliability.invariants import assert_accounted, assert_invariants
from tests.support import NO_REDIS, ShopHandle, Stack, shopify_headers, until
from workers.worker import build_worker

FLOOD = 50


async def flood(
    stack: Stack, shop: ShopHandle, deliveries: list[tuple[str, dict[str, Any], str]]
) -> Counter[int]:
    """Send (topic, payload, event id) deliveries all at once; returns the status codes."""
    responses: list[httpx.Response] = await asyncio.gather(
        *(stack.deliver(shop, body, topic=topic, event_id=eid) for topic, body, eid in deliveries)
    )
    return Counter(r.status_code for r in responses)


async def workers(stack: Stack, count: int = 2) -> None:
    """Several real workers draining the queue at the same time, contending for the order."""
    await asyncio.gather(*(stack.run_worker() for _ in range(count)))


async def credits_of(stack: Stack, shop: ShopHandle) -> int:
    return await stack.credit_count(shop)  # one entry per credit: no refunds here


async def test_fifty_concurrent_deliveries_of_one_event_credit_once(stack: Stack) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    event_id = str(uuid.uuid4())
    codes = await flood(stack, shop, [("orders/paid", paid_order(id=order_id), event_id)] * FLOOD)
    await workers(stack)

    credits = await credits_of(stack, shop)
    print(f"\nflood of one event: sent {FLOOD}, status codes {dict(codes)}, credits {credits}")
    assert codes == {200: FLOOD}
    assert credits == 1
    assert (await stack.order(shop, order_id))["status"] == "processed"
    await assert_accounted(stack.resources.sessionmaker, shop.id, [order_id])
    await assert_invariants(stack.resources.sessionmaker)


async def test_one_order_under_fifty_event_ids_and_topics_credits_once(stack: Stack) -> None:
    """orders/create and orders/paid (and updates) of one order, each under a new event id,
    arriving together while two workers handle them."""
    shop = await stack.create_shop()
    order_id = new_order_id()
    topics = ["orders/create", "orders/paid", "orders/updated"]
    deliveries = [
        (topics[i % len(topics)], paid_order(id=order_id), str(uuid.uuid4())) for i in range(FLOOD)
    ]
    sending = asyncio.create_task(flood(stack, shop, deliveries))

    async def some_stored() -> bool:
        async with stack.resources.sessionmaker() as session:
            return bool(await session.scalar(select(func.count()).select_from(WebhookEvent)))

    await until(some_stored, 30, "the first deliveries to be stored")
    await workers(stack)  # they start while deliveries are still arriving
    codes = await sending
    await workers(stack)  # what arrived after the first workers emptied the queue

    credits = await credits_of(stack, shop)
    print(f"\none order, {FLOOD} event ids: status codes {dict(codes)}, credits {credits}")
    assert codes == {200: FLOOD}
    assert credits == 1
    order = await stack.order(shop, order_id)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")
    await assert_invariants(stack.resources.sessionmaker)


async def test_many_orders_created_and_paid_together_each_credit_once(stack: Stack) -> None:
    shop = await stack.create_shop()
    orders = [new_order_id() for _ in range(10)]
    deliveries = [
        (topic, paid_order(id=order_id), str(uuid.uuid4()))
        for order_id in orders
        for topic in ("orders/create", "orders/paid", "orders/paid", "orders/create")
    ]
    codes = await flood(stack, shop, deliveries)
    await workers(stack, 3)

    credits = await credits_of(stack, shop)
    print(f"\n{len(orders)} orders, {len(deliveries)} deliveries: credits {credits}")
    assert codes == {200: len(deliveries)}
    assert credits == len(orders)
    statuses = await assert_accounted(stack.resources.sessionmaker, shop.id, orders)
    assert set(statuses.values()) == {"processed"}
    await assert_invariants(stack.resources.sessionmaker)


async def test_redeliveries_days_later_change_nothing(stack: Stack) -> None:
    """After the credit: the same event again, the order under new ids with old timestamps, and
    an older snapshot with a different total. Nothing moves."""
    shop = await stack.create_shop()
    order_id = new_order_id()
    event_id = str(uuid.uuid4())
    assert (await stack.deliver(shop, paid_order(id=order_id), event_id=event_id)).is_success
    await stack.run_worker()
    before = await stack.order(shop, order_id)
    assert before["status"] == "processed"

    older = paid_order(
        id=order_id,
        updated_at="2026-11-17T10:15:09-05:00",  # three days before the snapshot held
        total_price="1000.00",
    )
    deliveries = [
        *[("orders/paid", paid_order(id=order_id), event_id)] * 10,  # Shopify's own retries
        *[("orders/paid", paid_order(id=order_id), str(uuid.uuid4())) for _ in range(10)],
        *[("orders/updated", older, str(uuid.uuid4())) for _ in range(10)],
        *[("orders/create", older, str(uuid.uuid4())) for _ in range(10)],
    ]
    codes = await flood(stack, shop, deliveries)
    await workers(stack)

    credits = await credits_of(stack, shop)
    after = await stack.order(shop, order_id)
    print(f"\nredeliveries after the credit: {len(deliveries)} sent, credits {credits}")
    assert codes == {200: len(deliveries)}
    assert credits == 1
    for field in ("status", "credited_amount", "cashback_amount", "total_amount"):
        assert after[field] == before[field], field
    await assert_invariants(stack.resources.sessionmaker)


async def test_a_production_worker_drains_a_flood_and_what_no_ring_announced(
    stack: Stack,
) -> None:
    """Not a burst run: the worker as `cashback worker` runs it, with its drain loops (woken by
    rings, and looking in the inbox by themselves when none comes) and its cron sweeper (which
    also runs at start). Ten deliveries were stored while Redis was away, so nothing rang for
    them; fifty more arrive while it runs. Every order is credited once."""
    shop = await stack.create_shop()
    unrung = [new_order_id() for _ in range(10)]
    async with stack.degraded_client(redis_url=NO_REDIS) as offline:
        for order_id in unrung:
            body = json.dumps(paid_order(id=order_id)).encode()
            response = await offline.post(
                "/webhooks/shopify", content=body, headers=shopify_headers(shop, body)
            )
            assert response.json() == {"result": "accepted"}
    async with stack.resources.sessionmaker() as session:  # stored before the sweeper's window
        await session.execute(
            update(WebhookEvent).values(received_at=datetime.now(UTC) - timedelta(minutes=5))
        )
        await session.commit()

    worker = build_worker(stack.settings, handle_signals=False)
    running = asyncio.create_task(worker.async_run())
    try:
        rung = [new_order_id() for _ in range(FLOOD)]
        codes = await flood(
            stack,
            shop,
            [("orders/paid", paid_order(id=order_id), str(uuid.uuid4())) for order_id in rung],
        )
        assert codes == {200: FLOOD}

        async def all_credited() -> bool:
            return await credits_of(stack, shop) == len(unrung) + FLOOD

        await until(all_credited, 60, "every order to be credited")
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await worker.close()

    statuses = await assert_accounted(stack.resources.sessionmaker, shop.id, unrung + rung)
    assert set(statuses.values()) == {"processed"}
    assert await credits_of(stack, shop) == len(unrung) + FLOOD
    await assert_invariants(stack.resources.sessionmaker)
