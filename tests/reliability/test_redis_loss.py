"""Redis lost (flushed, unreachable, restarted empty) while webhooks arrive: the API answers 2xx
only for events stored in PostgreSQL, and every stored event is processed once Redis is back."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.inbox.models import WebhookEvent
from tests.payloads import new_order_id, paid_order
from tests.reliability.invariants import assert_accounted, assert_invariants
from tests.reliability.servers import RedisProcess
from tests.support import Stack
from workers.sweeper import redrive


async def stored_events(stack: Stack) -> dict[str, WebhookEvent]:
    async with stack.resources.sessionmaker() as session:
        events = await session.scalars(select(WebhookEvent))
        return {e.event_key: e for e in events}


async def sweep_now(stack: Stack) -> dict[str, int]:
    return await redrive(stack.resources, datetime.now(UTC) + timedelta(minutes=1))


async def test_a_flushed_queue_loses_nothing(redis_stack: Stack, own_redis: RedisProcess) -> None:
    stack = redis_stack
    shop = await stack.create_shop()
    orders = [new_order_id() for _ in range(20)]
    for order_id in orders:
        assert (await stack.deliver(shop, paid_order(id=order_id))).status_code == 200

    own_redis.flushall()  # every queued job is gone
    await stack.run_worker()
    assert await stack.credit_count(shop) == 0

    started = time.monotonic()
    swept = await sweep_now(stack)
    await stack.run_worker()
    recovered = time.monotonic() - started
    credits = await stack.credit_count(shop)
    print(
        f"\nredis flushed: {len(orders)} events stored, {swept['events']} re-driven, "
        f"{credits} credited, {len(orders) - credits} lost, recovered in {recovered:.2f}s"
    )
    assert swept["events"] == len(orders)
    assert credits == len(orders)
    await assert_accounted(stack.resources.sessionmaker, shop.id, orders)
    await assert_invariants(stack.resources.sessionmaker)


async def test_redis_down_then_back_empty_every_acknowledged_event_is_processed(
    redis_stack: Stack, own_redis: RedisProcess
) -> None:
    stack = redis_stack
    shop = await stack.create_shop()
    orders = [new_order_id() for _ in range(30)]
    answers: dict[str, int] = {}
    for n, order_id in enumerate(orders):
        if n == 10:
            own_redis.stop()  # unreachable while webhooks keep arriving
        if n == 20:
            own_redis.start()  # back, empty
        event_id = str(uuid.uuid4())
        response = await stack.deliver(shop, paid_order(id=order_id), event_id=event_id)
        answers[event_id] = response.status_code
        if n == 15:
            # The sweeper during the outage: nothing can be rung, and nothing is counted.
            assert (await sweep_now(stack))["events"] >= 1

    stored = await stored_events(stack)
    acknowledged = {e for e, code in answers.items() if 200 <= code < 300}
    assert acknowledged <= set(stored), "a 2xx for an event that is not stored"
    assert {e.attempts for e in stored.values()} == {0}

    own_redis.stop()  # and lost once more before anyone looked
    own_redis.start()
    started = time.monotonic()
    swept = await sweep_now(stack)
    await stack.run_worker()
    recovered = time.monotonic() - started

    credits = await stack.credit_count(shop)
    unprocessed = [e for e in (await stored_events(stack)).values() if e.status != "processed"]
    print(
        f"\nredis down and restarted empty: {len(answers)} sent, {len(acknowledged)} answered 2xx, "
        f"{len(stored)} stored, {swept['events']} re-driven, {credits} credited, "
        f"{len(unprocessed)} lost, recovered in {recovered:.2f}s"
    )
    assert acknowledged == set(answers), answers  # storing needs PostgreSQL only
    assert not unprocessed
    assert credits == len(orders)
    await assert_accounted(stack.resources.sessionmaker, shop.id, orders)
    await assert_invariants(stack.resources.sessionmaker)
