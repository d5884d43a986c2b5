"""The order lifecycle tells customers and merchants, through the real outbox and worker."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.uow import take_jobs
from app.orders import lifecycle as order_lifecycle
from app.orders.models import Order
from tests.notifications.helpers import configure
from tests.notifications.receiver import Receiver, verify_signature
from tests.payloads import paid_order, refund
from tests.support import Stack


async def test_credit_and_refund_notices_reach_the_customer_webhook_once(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    secret = await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    await stack.deliver(shop, paid_order())
    await stack.deliver(shop, paid_order())  # a second copy of the same order
    await stack.run_worker()
    await stack.deliver(shop, refund(), topic="refunds/create")
    await stack.run_worker()

    notices = [r for r in receiver.requests if r.path == "/notices"]
    for notice in notices:
        verify_signature(secret, notice)
    data: list[tuple[str, dict[str, Any]]] = [(n.json["type"], n.json["data"]) for n in notices]
    assert [(t, d["amount"], d["balance"]) for t, d in data] == [
        ("cashback.credited", "4.38", "4.38"),
        ("cashback.reversed", "1.80", "2.58"),
    ]
    assert data[0][1]["customer"] == {
        "id": "115310627314723954",
        "email": "maria.lopez@example.com",
    }


async def test_customers_are_not_told_when_the_shop_turns_notices_off(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    await configure(
        stack, shop, notification_webhook_url=receiver.url("/notices"), notify_customers=False
    )
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    assert receiver.requests == []


async def test_an_order_that_fails_for_good_alerts_the_merchant(
    stack: Stack, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, alert_webhook_url=receiver.url("/alerts"))
    await stack.deliver(shop, paid_order(financial_status="pending"), topic="orders/create")
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        order = await session.get_one(Order, 1)
        await order_lifecycle.mark_failed(session, order, "Shopify said no")
        await order_lifecycle.mark_failed(session, order, "again")  # already failed: no alert
        await session.commit()
    await stack.resources.broker.enqueue(take_jobs(session))
    await stack.run_worker()
    [alert] = receiver.requests
    assert alert.json["type"] == "order.failed"
    assert alert.json["data"]["error"] == "Shopify said no"


async def test_a_data_request_sends_the_merchant_an_export(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, alert_webhook_url=receiver.url("/alerts"))
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    request = {"shop_domain": shop.domain, "customer": {"id": 115310627314723954}}
    await stack.deliver(shop, request, topic="customers/data_request")
    await stack.run_worker()
    [alert] = receiver.requests
    export = alert.json["data"]["export"]
    assert alert.json["type"] == "customers.data_request"
    assert export["customer"]["email"] == "maria.lopez@example.com"
    assert [(e["kind"], e["amount"]) for e in export["ledger"]] == [("credit", "4.38")]
