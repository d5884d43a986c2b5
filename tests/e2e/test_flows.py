"""Flows end to end through the real worker that only unit tests covered: refunds and
cancellations of scheduled credit, zero- and three-decimal currencies down to the Shopify push,
campaigns across the shop's midnight, the per-order cap, tax-inclusive prices and shipping, and
an edit after credit. Amounts are worked out by hand in the comments."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.orders.models import Order
from tests.credit_sync.helpers import configure_shop
from tests.payloads import SHOES, money_set, new_order_id, paid_order, refund_2026
from tests.shopify.admin_standin import FakeShopify, running
from tests.support import ShopHandle, Stack
from workers.sweeper import redrive


@pytest.fixture
async def shopify() -> AsyncIterator[FakeShopify]:
    async with running(FakeShopify()) as standin:
        yield standin
    assert standin.invalid_queries == []


async def settings(stack: Stack, shop: ShopHandle, **values: Any) -> None:
    response = await stack.client.patch("/v1/shop/settings", headers=shop.auth, json=values)
    assert response.status_code == 200, response.text


async def program(stack: Stack, shop: ShopHandle, **values: Any) -> None:
    response = await stack.client.put("/v1/program", headers=shop.auth, json=values)
    assert response.status_code == 200, response.text


async def handled(stack: Stack, shop: ShopHandle, payload: dict[str, Any], **kw: Any) -> None:
    assert (await stack.deliver(shop, payload, **kw)).json()["result"] == "accepted"
    await stack.run_worker()


async def make_due(stack: Stack, shop: ShopHandle) -> None:
    """The award delay has passed (for every scheduled order of the shop); the sweeper rings."""
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Order)
            .where(Order.shop_id == shop.id, Order.status == "scheduled")
            .values(award_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()
    await redrive(stack.resources, datetime.now(UTC))
    await stack.run_worker()


async def test_a_refund_and_a_cancellation_of_scheduled_credit(stack: Stack) -> None:
    shop = await stack.create_shop()
    await settings(stack, shop, award_delay_days=14)
    refunded, cancelled = new_order_id(), new_order_id()
    for order_id in (refunded, cancelled):
        await handled(stack, shop, paid_order(id=order_id))
        assert (await stack.order(shop, order_id))["status"] == "scheduled"

    # One shoe refunded before the credit: 4.38 less the shoe's 1.80 will be credited.
    shoe = refund_2026(order_id=refunded, lines=[(SHOES, 1)], transactions=[("38.30", "USD")])
    await handled(stack, shop, shoe, topic="refunds/create")
    order = await stack.order(shop, refunded)
    assert (order["status"], order["award_amount"], order["credited_amount"]) == (
        "scheduled",
        "2.58",
        "0.00",
    )
    cancel = paid_order(
        id=cancelled,
        cancelled_at="2026-11-21T10:00:00-05:00",
        updated_at="2026-11-21T10:00:00-05:00",
    )
    await handled(stack, shop, cancel, topic="orders/cancelled")
    assert (await stack.order(shop, cancelled))["status"] == "rejected"

    await make_due(stack, shop)
    order = await stack.order(shop, refunded)
    assert (order["status"], order["credited_amount"], order["reversed_amount"]) == (
        "processed",
        "2.58",
        "0.00",
    )
    assert (await stack.order(shop, cancelled))["credited_amount"] == "0.00"
    assert await stack.credit_count(shop) == 1


def single_line_order(currency: str, price: str, **overrides: Any) -> dict[str, Any]:
    """One line of `price` (in `currency`, the shop's), nothing else."""
    line = {
        "id": 7001,
        "title": "Kimono",
        "product_id": 8001,
        "quantity": 1,
        "current_quantity": 1,
        "price": price,
        "price_set": money_set(price, shop_currency=currency),
        "discount_allocations": [],
        "tax_lines": [],
        "gift_card": False,
    }
    return paid_order(
        id=new_order_id(),
        currency=currency,
        presentment_currency=currency,
        total_price=price,
        total_price_set=money_set(price, shop_currency=currency),
        line_items=[line],
        shipping_lines=[],
        total_shipping_price_set=None,
        **overrides,
    )


@pytest.mark.parametrize(
    ("currency", "price", "cashback"),
    [
        ("JPY", "12345", "617"),  # 5% of ¥12,345 = ¥617.25 → ¥617
        ("KWD", "12.345", "0.617"),  # 5% of 12.345 KWD = 0.61725 → 0.617
    ],
)
async def test_zero_and_three_decimal_currencies_from_webhook_to_the_shopify_push(
    stack: Stack, shopify: FakeShopify, currency: str, price: str, cashback: str
) -> None:
    shop = await stack.create_shop(currency=currency)
    await configure_shop(stack, shop, shopify)
    payload = single_line_order(currency, price)
    await handled(stack, shop, payload)
    await stack.run_worker()  # the push

    order = await stack.order(shop, payload["id"])
    assert (order["currency"], order["total_amount"], order["credited_amount"]) == (
        currency,
        price,
        cashback,
    )
    customer = await stack.client.get(f"/v1/customers/{order['customer_id']}", headers=shop.auth)
    assert customer.json()["balance"] == cashback
    [push] = shopify.mutations
    assert push["input"]["creditAmount"] == {"amount": cashback, "currencyCode": currency}


async def test_campaign_windows_are_the_shops_local_days(stack: Stack) -> None:
    """Double cashback on 21 November in Tokyo: an order placed at 00:15 there (10:15 the day
    before in New York) is in it; one placed at 23:59 Tokyo time on the 20th is not."""
    shop = await stack.create_shop()
    await settings(stack, shop, timezone="Asia/Tokyo")
    await program(
        stack,
        shop,
        campaigns=[
            {
                "name": "Tokyo day",
                "starts_at": "2026-11-21T00:00:00",
                "ends_at": "2026-11-22T00:00:00",
                "multiplier": "2",
            }
        ],
    )
    inside = paid_order(id=new_order_id(), created_at="2026-11-20T10:15:02-05:00")
    outside = paid_order(id=new_order_id(), created_at="2026-11-20T09:59:00-05:00")
    for payload in (inside, outside):
        await handled(stack, shop, payload)
    # 10% × 87.50 = 8.75; 5% × 87.50 = 4.375 → 4.38.
    assert (await stack.order(shop, inside["id"]))["credited_amount"] == "8.75"
    assert (await stack.order(shop, outside["id"]))["credited_amount"] == "4.38"
    [line] = [
        li
        for li in (await stack.order(shop, inside["id"]))["lines"]
        if li["external_id"] == str(SHOES)
    ]
    assert line["campaigns"] == ["Tokyo day"]


async def test_the_cap_tax_inclusive_prices_and_shipping_through_the_worker(stack: Stack) -> None:
    shop = await stack.create_shop()
    await program(
        stack, shop, base_rate="10", include_shipping=True, maximum_cashback_per_order="9.00"
    )
    capped = paid_order(id=new_order_id())
    # 10% of 87.50 + 10% of 5.00 shipping = 9.25, capped at 9.00.
    await handled(stack, shop, capped)
    order = await stack.order(shop, capped["id"])
    assert (order["cashback_amount"], order["credited_amount"]) == ("9.00", "9.00")
    assert sum(int(li["cashback_amount"].replace(".", "")) for li in order["lines"]) == 900

    await program(stack, shop, base_rate="10")  # tax inside the prices comes out of the base
    inclusive = paid_order(id=new_order_id(), taxes_included=True)
    # Shoes 72.00 less their 4.61 tax, socks 15.50 less 0.99: 81.90 × 10% = 8.19.
    await handled(stack, shop, inclusive)
    assert (await stack.order(shop, inclusive["id"]))["credited_amount"] == "8.19"


async def test_an_edit_after_credit_changes_nothing_credited(stack: Stack) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    await handled(stack, shop, paid_order(id=order_id))
    edited = paid_order(id=order_id, updated_at="2026-11-21T10:00:00-05:00")
    edited["line_items"][0] |= {"quantity": 5, "current_quantity": 5}  # three more shoes
    await handled(stack, shop, edited, topic="orders/updated")

    order = await stack.order(shop, order_id)
    assert (order["status"], order["cashback_amount"], order["credited_amount"]) == (
        "processed",
        "4.38",
        "4.38",
    )
    async with stack.resources.sessionmaker() as session:
        snapshot = await session.scalar(
            select(Order.snapshot).where(Order.external_id == str(order_id))
        )
    assert snapshot is not None and snapshot["lines"][0]["quantity"] == 2  # the credited one
    assert await stack.credit_count(shop) == 1
