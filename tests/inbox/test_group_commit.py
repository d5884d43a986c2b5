"""Concurrent deliveries share one write (group commit) and each still gets its own answer;
the shop cache never accepts what the database would refuse for long."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import delete, func, select, update

from app.inbox.models import WebhookEvent
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.shops.models import Shop
from tests.payloads import paid_order
from tests.support import Stack, shopify_headers


async def event_keys(stack: Stack) -> list[str]:
    async with stack.resources.sessionmaker() as session:
        return list(await session.scalars(select(WebhookEvent.event_key)))


async def queued_jobs(stack: Stack) -> int:
    return int(await stack.resources.broker.redis.zcard(stack.settings.queue_name))


async def test_concurrent_deliveries_are_each_stored_once_and_answered_for_themselves(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    other = await stack.create_shop()
    deliveries = []
    for n in range(30):
        target = shop if n % 3 else other
        body = json.dumps(paid_order(id=1000 + n)).encode()
        # Event 7 twice in the same burst: one is stored, the other is its duplicate.
        event_id = "evt-7" if n in (7, 8) else f"evt-{n}"
        deliveries.append((body, shopify_headers(target, body, event_id=event_id)))
    malformed = b'{"id": 1, "line_items": ['
    deliveries.append((malformed, shopify_headers(shop, malformed, event_id="evt-bad")))

    responses = await asyncio.gather(
        *(stack.client.post("/webhooks/shopify", content=b, headers=h) for b, h in deliveries)
    )

    results = [r.json()["result"] for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert sorted([results[7], results[8]]) == ["accepted", "duplicate"]
    assert results[-1] == "malformed"
    assert results.count("accepted") == 29
    keys = await event_keys(stack)
    assert len(keys) == 30 and len(set(keys)) == 30  # evt-7 once, and evt-bad kept as failed
    # The batch rang its bucket's drain job, not a job per event: a few jobs for the burst,
    # and the real worker they wake handles every stored event.
    assert 1 <= await queued_jobs(stack) <= 4
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        statuses = list(await session.scalars(select(WebhookEvent.status)))
        credited = dict(
            (
                await session.execute(
                    select(Order.shop_id, func.count(func.distinct(LedgerEntry.order_id)))
                    .join(LedgerEntry, LedgerEntry.order_id == Order.id)
                    .group_by(Order.shop_id)
                )
            ).all()
        )
    assert sorted(statuses) == ["failed"] + ["processed"] * 29
    # 29 distinct orders, each credited once: 19 of the shop's 20 (one of orders 1007 and
    # 1008 was the duplicate of the other's event) and all 10 of the other shop's.
    assert credited == {shop.id: 19, other.id: 10}
    assert await stack.credit_count(shop) + await stack.credit_count(other) == 29


async def test_a_new_webhook_secret_is_honoured_at_once_despite_the_cache(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.deliver(shop, paid_order(id=1))).json()["result"] == "accepted"
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Shop).where(Shop.id == shop.id).values(webhook_secret="whsec_rotated")
        )
        await session.commit()
    body = json.dumps(paid_order(id=2)).encode()
    response = await stack.client.post(
        "/webhooks/shopify",
        content=body,
        headers=shopify_headers(shop, body, secret="whsec_rotated"),
    )
    assert response.json() == {"result": "accepted"}


async def test_a_deleted_shop_stores_nothing_even_while_cached(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.deliver(shop, paid_order(id=1))).json()["result"] == "accepted"
    async with stack.resources.sessionmaker() as session:
        await session.execute(delete(Shop).where(Shop.id == shop.id))
        await session.commit()
    response = await stack.deliver(shop, paid_order(id=2))
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"
    assert await event_keys(stack) == []  # the first event went with the shop


async def test_an_over_long_header_is_refused_alone(stack: Stack) -> None:
    shop = await stack.create_shop()
    deliveries = []
    for n in range(5):
        body = json.dumps(paid_order(id=2000 + n)).encode()
        # Topics are at most 64 characters in the inbox: this one cannot be stored, and must
        # not fail the deliveries written with it.
        topic = "orders/" + "x" * 100 if n == 2 else "orders/paid"
        deliveries.append((body, shopify_headers(shop, body, topic=topic)))
    responses = await asyncio.gather(
        *(stack.client.post("/webhooks/shopify", content=b, headers=h) for b, h in deliveries)
    )
    assert [r.status_code for r in responses] == [200, 200, 400, 200, 200]
    assert responses[2].json()["code"] == "webhook_header_too_long"
    assert len(await event_keys(stack)) == 4
