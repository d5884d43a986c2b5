"""From a signed webhook to store credit, through a real arq worker on real PostgreSQL/Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from arq import Retry
from sqlalchemy import select

from app.core.jobs import MAX_TRIES
from app.inbox import tasks as webhook_tasks
from app.inbox.models import EventStatus, WebhookEvent
from app.shops.models import ProcessingMode
from tests.payloads import new_order_id, paid_order
from tests.races import MAX_RACERS, race_events, stored_event_ids
from tests.support import NO_REDIS, ShopHandle, Stack, shopify_headers
from workers.sweeper import redrive


async def orders_of(stack: Stack, shop: ShopHandle, **params: Any) -> list[dict[str, Any]]:
    response = await stack.client.get("/v1/orders", headers=shop.auth, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def balance_of(stack: Stack, shop: ShopHandle, customer_id: str) -> str:
    response = await stack.client.get(f"/v1/customers/{customer_id}", headers=shop.auth)
    assert response.status_code == 200, response.text
    balance: str = response.json()["balance"]
    return balance


async def test_the_sample_paid_order_is_credited_438(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.deliver(shop, paid_order())).status_code == 200
    await stack.run_worker()

    [order] = await orders_of(stack, shop)
    assert order["status"] == "processed"
    assert (order["cashback_amount"], order["credited_amount"]) == ("4.38", "4.38")
    assert order["external_id"] == "820982911946154508"  # beyond 2^53, kept exact
    assert await balance_of(stack, shop, order["customer_id"]) == "4.38"

    detail = (await stack.client.get(f"/v1/orders/{order['id']}", headers=shop.auth)).json()
    assert [(h["from_status"], h["to_status"]) for h in detail["history"]] == [
        (None, "received"),
        ("received", "processed"),
    ]
    assert sum(int(line["cashback_amount"].replace(".", "")) for line in detail["lines"]) == 438
    ledger = (
        await stack.client.get(f"/v1/customers/{order['customer_id']}/ledger", headers=shop.auth)
    ).json()
    assert [(e["kind"], e["amount"], e["order_id"]) for e in ledger["items"]] == [
        ("credit", "4.38", order["id"])
    ]


async def test_twenty_concurrent_deliveries_of_one_event_credit_once(stack: Stack) -> None:
    shop = await stack.create_shop()
    responses = await asyncio.gather(
        *(stack.deliver(shop, paid_order(), event_id="evt-flood") for _ in range(20))
    )
    results = sorted(r.json()["result"] for r in responses)
    assert results == ["accepted"] + ["duplicate"] * 19
    await stack.run_worker()
    assert await stack.credit_count(shop) == 1


async def test_one_order_under_twenty_event_ids_credits_once(stack: Stack) -> None:
    shop = await stack.create_shop()
    responses = await asyncio.gather(*(stack.deliver(shop, paid_order()) for _ in range(20)))
    assert {r.json()["result"] for r in responses} == {"accepted"}
    await stack.run_worker(max_jobs=20)  # a batch handles them one after another
    assert await stack.credit_count(shop) == 1
    [order] = await orders_of(stack, shop)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")


async def test_one_order_paid_in_racing_transactions_credits_once(stack: Stack) -> None:
    """Eight deliveries of one paid order, each handled in its own transaction, all open at
    once before any reaches the order: every one handles the order, one credit is written."""
    shop = await stack.create_shop()
    for _ in range(MAX_RACERS):
        assert (await stack.deliver(shop, paid_order())).json()["result"] == "accepted"
    outcomes = await race_events(stack, await stored_event_ids(stack, "orders/paid"))
    assert outcomes == [EventStatus.processed] * MAX_RACERS  # each one reached the order
    assert await stack.credit_count(shop) == 1
    order = await stack.order(shop, 820982911946154508)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")
    received = [e for e in order["history"] if e["action"] == "order.received"]
    assert len(received) == 1  # inserted once, though eight transactions tried at once


async def test_create_then_paid_waits_for_payment_then_credits(stack: Stack) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    created = paid_order(
        id=order_id, financial_status="pending", updated_at="2026-11-20T10:15:02-05:00"
    )
    await stack.deliver(shop, created, topic="orders/create")
    await stack.run_worker()
    [order] = await orders_of(stack, shop)
    assert order["status"] == "awaiting_payment"
    assert order["credited_amount"] == "0.00"

    paid = paid_order(id=order_id, updated_at="2026-11-20T10:20:00-05:00")
    await stack.deliver(shop, paid, topic="orders/paid")
    await stack.run_worker()
    [order] = await orders_of(stack, shop)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")


async def test_a_late_stale_create_does_not_undo_a_paid_order(stack: Stack) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id, updated_at="2026-11-20T10:20:00-05:00"))
    await stack.run_worker()
    stale = paid_order(
        id=order_id, financial_status="pending", updated_at="2026-11-20T10:15:02-05:00"
    )
    await stack.deliver(shop, stale, topic="orders/create")
    await stack.run_worker()
    [order] = await orders_of(stack, shop)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")
    assert await stack.credit_count(shop) == 1


async def test_guest_orders_wait_for_a_customer_account(stack: Stack) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order(id=new_order_id(), customer=None))
    await stack.run_worker()
    [order] = await orders_of(stack, shop)
    assert (order["status"], order["customer_id"], order["cashback_amount"]) == (
        "awaiting_customer",
        None,
        "4.38",
    )
    assert await stack.credit_count(shop) == 0


async def test_an_order_that_earns_nothing_is_not_eligible_with_the_reason(stack: Stack) -> None:
    shop = await stack.create_shop()
    gift_cards_only = paid_order(id=new_order_id())
    gift_cards_only["line_items"] = [gift_cards_only["line_items"][1]]
    await stack.deliver(shop, gift_cards_only)
    await stack.deliver(shop, paid_order(id=new_order_id(), test=True))
    await stack.run_worker()
    reasons = {o["status_reason"] for o in await orders_of(stack, shop, status="not_eligible")}
    assert reasons == {"gift_card", "test_order"}
    assert await stack.credit_count(shop) == 0


async def test_manual_mode_queues_the_order_as_pending(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    [order] = await orders_of(stack, shop)
    assert (order["status"], order["cashback_amount"], order["credited_amount"]) == (
        "pending",
        "4.38",
        "0.00",
    )


async def test_cancelled_and_refunded_orders_earn_no_credit(stack: Stack) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order(id=new_order_id(), cancelled_at="2026-11-21T09:00:00Z"))
    await stack.deliver(shop, paid_order(id=new_order_id(), financial_status="refunded"))
    await stack.run_worker()
    statuses = sorted((o["status"], o["status_reason"]) for o in await orders_of(stack, shop))
    assert statuses == [("not_eligible", "order refunded"), ("rejected", "order cancelled")]
    assert await stack.credit_count(shop) == 0


async def test_an_order_in_another_currency_fails_the_event_without_an_order(
    stack: Stack,
) -> None:
    shop = await stack.create_shop(currency="EUR")
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    assert await orders_of(stack, shop) == []
    async with stack.resources.sessionmaker() as session:
        [event] = (await session.scalars(select(WebhookEvent))).all()
    assert event.status == EventStatus.failed
    assert event.error is not None and "not the shop's EUR" in event.error


async def test_an_event_stored_while_redis_was_down_is_processed_after_the_sweep(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    async with stack.degraded_client(redis_url=NO_REDIS) as offline_client:
        response = await offline_client.post(
            "/webhooks/shopify", content=body, headers=shopify_headers(shop, body)
        )
    assert response.json() == {"result": "accepted"}

    await stack.run_worker()  # the broker never rang: nothing to do yet
    assert await orders_of(stack, shop) == []

    swept = await redrive(stack.resources, datetime.now(UTC))
    assert swept == {
        "events": 1,
        "orders": 0,
        "awards": 0,
        "payments": 0,
        "operations": 0,
        "other": 0,
        "given_up": 0,
    }
    await stack.run_worker()
    [order] = await orders_of(stack, shop)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")


async def test_a_job_out_of_tries_marks_the_event_and_its_order_failed(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    await stack.deliver(
        shop, paid_order(id=order_id, financial_status="pending"), topic="orders/create"
    )
    await stack.run_worker()
    assert (await stack.deliver(shop, paid_order(id=order_id))).status_code == 200

    async def broken(*_: Any, **__: Any) -> None:
        raise ConnectionResetError("connection reset mid-evaluation")

    monkeypatch.setattr("app.orders.service.evaluate", broken)
    async with stack.resources.sessionmaker() as session:
        event_id = max((await session.scalars(select(WebhookEvent.id))).all())
    ctx: dict[str, Any] = {"resources": stack.resources, "job_try": 1, "job_id": "t"}
    with pytest.raises(Retry):  # an early try is retried with backoff
        await webhook_tasks.handle_webhook_event(ctx, event_id)
    ctx["job_try"] = MAX_TRIES
    assert await webhook_tasks.handle_webhook_event(ctx, event_id) is None

    async with stack.resources.sessionmaker() as session:
        event = await session.get_one(WebhookEvent, event_id)
    assert (event.status, event.attempts) == (EventStatus.failed, 2)
    assert event.error is not None and "connection reset" in event.error
    [order] = await orders_of(stack, shop)
    detail = (await stack.client.get(f"/v1/orders/{order['id']}", headers=shop.auth)).json()
    assert (detail["status"], detail["status_reason"]) == ("failed", "processing failed")
    assert "connection reset mid-evaluation" in detail["last_error"]
    assert await stack.credit_count(shop) == 0
