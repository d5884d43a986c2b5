"""Deliveries as Shopify sends them today: one event id shared by the deliveries of one
merchant action, both spellings of the headers, and when each delivery was triggered."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.inbox.models import WebhookEvent
from tests.observability.test_metrics import sample, scrape
from tests.payloads import SHOES, new_order_id, paid_order, refund_2026
from tests.support import Stack, shopify_headers


async def stored(stack: Stack) -> list[WebhookEvent]:
    async with stack.resources.sessionmaker() as session:
        return list(await session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


@pytest.mark.parametrize("refund_first", [True, False], ids=["refund first", "update first"])
async def test_a_refund_and_its_order_update_sharing_one_event_id_are_both_handled(
    stack: Stack, refund_first: bool
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.run_worker()
    # One merchant action (refund one of the two shoes) sends both, with one event id.
    action = str(uuid.uuid4())
    the_refund = refund_2026(order_id=order_id, lines=[(SHOES, 1)], transactions=[("38.30", "USD")])
    update = paid_order(
        id=order_id, financial_status="partially_refunded", updated_at="2026-11-24T09:02:12-05:00"
    )
    deliveries = [(the_refund, "refunds/create"), (update, "orders/updated")]
    if not refund_first:
        deliveries.reverse()
    answers = [
        (await stack.deliver(shop, body, topic=topic, event_id=action)).json()["result"]
        for body, topic in deliveries
    ]
    assert answers == ["accepted", "accepted"]  # neither is taken for the other's duplicate
    await stack.run_worker()

    order = await stack.order(shop, order_id)
    # The refunded shoe's share of the 4.38 credit: 3.60 × 1/2 = 1.80, taken back once.
    assert (order["status"], order["reversed_amount"]) == ("partially_reversed", "1.80")
    assert {(e.topic, e.status) for e in await stored(stack)} == {
        ("orders/paid", "processed"),
        ("refunds/create", "processed"),
        ("orders/updated", "processed"),
    }

    # The same delivery sent again (same topic and event id) is a duplicate: handled once.
    again = await stack.deliver(shop, the_refund, topic="refunds/create", event_id=action)
    assert again.json()["result"] == "duplicate"
    await stack.run_worker()
    assert (await stack.order(shop, order_id))["reversed_amount"] == "1.80"
    assert await stack.credit_count(shop) == 2  # the credit and one reversal


async def test_create_and_paid_of_one_checkout_share_an_event_id_and_credit_once(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    checkout = str(uuid.uuid4())
    created = paid_order(id=order_id, financial_status="paid")
    for topic in ("orders/create", "orders/paid"):
        response = await stack.deliver(shop, created, topic=topic, event_id=checkout)
        assert response.json()["result"] == "accepted"
    await stack.run_worker()
    assert (await stack.order(shop, order_id))["credited_amount"] == "4.38"
    assert await stack.credit_count(shop) == 1


async def test_headers_without_the_x_prefix_are_read_as_the_same(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    triggered = datetime.now(UTC) - timedelta(seconds=3)
    headers = {k.lower().removeprefix("x-"): v for k, v in shopify_headers(shop, body).items()} | {
        "shopify-triggered-at": triggered.isoformat().replace("+00:00", "Z")
    }
    assert "shopify-hmac-sha256" in headers and "x-shopify-topic" not in headers
    response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.json() == {"result": "accepted"}

    [event] = await stored(stack)
    assert (event.topic, event.api_version) == ("orders/paid", "2026-10")
    assert event.event_key == headers["shopify-event-id"]
    assert event.webhook_id == headers["shopify-webhook-id"]
    assert event.triggered_at is not None
    assert abs((event.triggered_at - triggered).total_seconds()) < 0.001

    samples = await scrape(stack)
    lag = "cashback_webhook_delivery_lag_seconds"
    assert sample(samples, f"{lag}_count", topic="orders/paid") == 1
    total = sample(samples, f"{lag}_sum", topic="orders/paid")
    assert total is not None and 3 <= total < 60  # triggered 3 s before it arrived
    assert sample(samples, f"{lag}_bucket", topic="orders/paid", le="2.0") == 0
    await stack.run_worker()
    assert (await stack.order(shop, 820982911946154508))["credited_amount"] == "4.38"


async def test_an_unreadable_triggered_at_is_stored_as_unknown_not_refused(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    body = json.dumps(paid_order()).encode()
    headers = shopify_headers(shop, body) | {"X-Shopify-Triggered-At": "yesterday"}
    response = await stack.client.post("/webhooks/shopify", content=body, headers=headers)
    assert response.json() == {"result": "accepted"}
    [event] = await stored(stack)
    assert event.triggered_at is None
