"""Orders paid partly with a gift card or store credit: no cashback on that part.

Order webhooks carry no transactions, only `payment_gateway_names`; the amounts come from the
Admin API (`order(id) { transactions }`), played here by the Shopify stand-in over real HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from app.orders import lifecycle as order_lifecycle
from app.orders import tasks
from app.orders.models import Order
from app.orders.service import PAYMENTS_NEED_REVIEW, WAITING_FOR_PAYMENTS
from app.shops.models import Shop
from tests.payloads import new_order_id, paid_order
from tests.shopify.admin_standin import TOKEN, FakeShopify, running
from tests.support import ShopHandle, Stack
from workers.sweeper import redrive


@pytest.fixture
async def shopify() -> AsyncIterator[FakeShopify]:
    async with running(FakeShopify()) as standin:
        yield standin
    assert standin.invalid_queries == [], "a query the Admin API would refuse"


async def give_admin_access(stack: Stack, shop: ShopHandle, shopify: FakeShopify) -> None:
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
        db_shop.platform_access_token = stack.resources.secrets.encrypt(TOKEN)
        db_shop.platform_api_base_url = shopify.url
        await session.commit()


def paid_with(order_id: int, *gateways: str) -> dict[str, Any]:
    return paid_order(id=order_id, payment_gateway_names=[*gateways, "shopify_payments"])


async def order_row(stack: Stack, shop: ShopHandle, order_id: int) -> Order:
    async with stack.resources.sessionmaker() as session:
        order = await session.scalar(
            select(Order).where(Order.shop_id == shop.id, Order.external_id == str(order_id))
        )
    assert order is not None
    return order


async def test_cashback_is_earned_only_on_what_neither_gift_card_nor_store_credit_paid(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await stack.create_shop()
    await give_admin_access(stack, shop, shopify)
    order_id = new_order_id()
    # The sample order (total 124.70) was paid 20.00 with a gift card, 10.00 with store
    # credit (its own cashback spent again) and 94.70 by card.
    shopify.add_payment(order_id, "gift_card", "20.00")
    shopify.add_payment(order_id, "shopify_store_credit", "10.00")
    shopify.add_payment(order_id, "shopify_payments", "94.70")
    # A failed gift card attempt and a refund back to store credit move nothing paid.
    shopify.order_transactions[str(order_id)] += [
        {
            "kind": "SALE",
            "status": "FAILURE",
            "gateway": "gift_card",
            "amountSet": {"shopMoney": {"amount": "50.00", "currencyCode": "USD"}},
        },
        {
            "kind": "REFUND",
            "status": "SUCCESS",
            "gateway": "shopify_store_credit",
            "amountSet": {"shopMoney": {"amount": "1.00", "currencyCode": "USD"}},
        },
    ]
    response = await stack.deliver(shop, paid_with(order_id, "gift_card", "shopify_store_credit"))
    assert response.status_code == 200
    await stack.run_worker()

    order = await stack.order(shop, order_id)
    # Eligible lines 87.50 (shoes 72.00 + socks 15.50), of which the card paid 94.70/124.70:
    # 5% × 87.50 × 94.70 / 124.70 = 3.3225… → 3.32 (half up, once, on the order's total).
    assert (order["status"], order["cashback_amount"]) == ("processed", "3.32")
    assert order["credited_amount"] == "3.32"
    assert order["payments"] == {
        "credit_gateways": ["gift_card", "shopify_store_credit"],
        "status": "read",
        "currency": "USD",
        "paid_with_credit_amount": "30.00",
        "gift_card_amount": "20.00",
        "store_credit_amount": "10.00",
        "read_at": order["payments"]["read_at"],
    }
    assert shopify.transaction_reads == [str(order_id)]  # read once

    # The same order updated later keeps what was read: no second query.
    updated = paid_with(order_id, "gift_card", "shopify_store_credit")
    updated["updated_at"] = "2026-11-20T11:00:00-05:00"
    await stack.deliver(shop, updated, topic="orders/updated")
    await stack.run_worker()
    assert shopify.transaction_reads == [str(order_id)]
    assert (await stack.order(shop, order_id))["credited_amount"] == "3.32"


async def test_an_order_paid_only_with_credit_earns_nothing_and_says_why(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await stack.create_shop()
    await give_admin_access(stack, shop, shopify)
    order_id = new_order_id()
    shopify.add_payment(order_id, "gift_card", "124.70")
    await stack.deliver(shop, paid_order(id=order_id, payment_gateway_names=["gift_card"]))
    await stack.run_worker()

    order = await stack.order(shop, order_id)
    assert (order["status"], order["status_reason"]) == (
        "not_eligible",
        "gift_card, paid_with_credit",
    )
    reasons = {line["external_id"]: line["reason"] for line in order["lines"]}
    assert set(reasons.values()) == {"gift_card", "paid_with_credit"}
    assert await stack.credit_count(shop) == 0


async def test_while_shopify_is_down_the_order_waits_and_is_credited_right_once_it_is_back(
    stack: Stack, shopify: FakeShopify, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "backoff_seconds", lambda job_try: 0.0)  # retries at once
    shop = await stack.create_shop()
    await give_admin_access(stack, shop, shopify)
    order_id = new_order_id()
    shopify.add_payment(order_id, "gift_card", "20.00")
    shopify.down = True
    await stack.deliver(shop, paid_with(order_id, "gift_card"))
    await stack.run_worker()  # every try of the read fails: out of tries, still waiting

    waiting = await stack.order(shop, order_id)
    assert (waiting["status"], waiting["status_reason"]) == ("received", WAITING_FOR_PAYMENTS)
    assert "HTTP 503" in (waiting["last_error"] or "")
    assert waiting["payments"]["status"] == "waiting"
    assert await stack.credit_count(shop) == 0  # never credited on a guess
    assert len(shopify.transaction_reads) == 5  # the job's tries

    # The sweeper asks again for an order whose read has not moved for a minute, however
    # often it did before: waiting for payments is never given up on.
    shopify.down = False
    swept = await redrive(stack.resources, (await order_row(stack, shop, order_id)).updated_at)
    assert swept["payments"] == 0  # not stale yet at its own last update
    later = (await order_row(stack, shop, order_id)).updated_at.replace(year=2100)
    swept = await redrive(stack.resources, later)
    assert (swept["payments"], swept["orders"], swept["given_up"]) == (1, 0, 0)
    await stack.run_worker()

    order = await stack.order(shop, order_id)
    # 5% × 87.50 × 104.70 / 124.70 = 3.6733… → 3.67
    assert (order["status"], order["credited_amount"]) == ("processed", "3.67")
    assert order["last_error"] is None
    assert await stack.credit_count(shop) == 1


async def test_without_admin_access_the_order_is_held_for_a_person_to_approve_the_amount(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()  # a ledger-only shop: no Admin API token at all
    order_id = new_order_id()
    await stack.deliver(shop, paid_with(order_id, "gift_card"))
    await stack.run_worker()

    order = await stack.order(shop, order_id)
    assert (order["status"], order["hold_reasons"]) == ("held", [PAYMENTS_NEED_REVIEW])
    assert order["payments"]["status"] == "needs_review"
    assert await stack.credit_count(shop) == 0
    # Releasing cannot credit a guess: it comes back held; a reviewer approves an amount.
    released = await stack.client.post(f"/v1/orders/{order['id']}/release", headers=shop.auth)
    assert released.json()["status"] == "held"
    approved = await stack.client.post(
        f"/v1/orders/{order['id']}/approve",
        headers=shop.auth,
        json={"amount": "3.67", "note": "gift card paid 20.00 of 124.70"},
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["credited_amount"] == "3.67"


async def test_process_cashback_refuses_an_amount_it_cannot_know_yet(
    stack: Stack, shopify: FakeShopify, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "backoff_seconds", lambda job_try: 0.0)
    shop = await stack.create_shop()
    await give_admin_access(stack, shop, shopify)
    shopify.down = True
    order_id = new_order_id()
    await stack.deliver(shop, paid_with(order_id, "Gift Card"))  # a name in doubt: read
    await stack.run_worker()
    assert shopify.transaction_reads  # the name was read as a possible gift card
    async with stack.resources.sessionmaker() as session:  # failed earlier, for another reason
        order = await session.scalar(select(Order).where(Order.external_id == str(order_id)))
        assert order is not None
        await order_lifecycle.mark_failed(session, order, "an earlier failure")
        await session.commit()
    detail = await stack.order(shop, order_id)
    assert detail["payments"]["credit_gateways"] == ["Gift Card"]
    response = await stack.client.post(f"/v1/orders/{detail['id']}/process", headers=shop.auth)
    assert response.status_code == 409
    assert response.json()["code"] == "payments_unknown"
    assert await stack.credit_count(shop) == 0


async def test_a_card_only_order_is_never_read(stack: Stack, shopify: FakeShopify) -> None:
    shop = await stack.create_shop()
    await give_admin_access(stack, shop, shopify)
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))  # payment_gateway_names: card only
    await stack.run_worker()
    order = await stack.order(shop, order_id)
    assert (order["credited_amount"], order["payments"]["status"]) == ("4.38", "none")
    assert shopify.transaction_reads == []
