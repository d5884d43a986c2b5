"""Refunds in the shapes Shopify sends today, end to end through the real worker: refunded
shipping in `refund_shipping_lines` (and the older `shipping_refund` adjustment), refund
transactions in the customer's currency, and amounts that cannot be valued.

The sample order credits 4.38: shoes 72.00 (2 × 40.00 less 8.00) earn 3.60, socks 15.50 earn
0.775, shipping 5.00 and the gift card earn nothing: 4.375 → 4.38, allocated 3.60 + 0.78.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.inbox.models import EventStatus, WebhookEvent
from app.orders.models import Order
from app.orders.refund_models import Refund
from tests.payloads import SHOES, money_set, new_order_id, paid_order, refund_2026
from tests.support import ShopHandle, Stack


async def credited(stack: Stack, shop: ShopHandle, order: dict[str, Any]) -> dict[str, Any]:
    await stack.deliver(shop, order)
    await stack.run_worker()
    return await stack.order(shop, order["id"])


async def refunded(stack: Stack, shop: ShopHandle, payload: dict[str, Any]) -> dict[str, Any]:
    response = await stack.deliver(shop, payload, topic="refunds/create")
    assert response.json()["result"] == "accepted"
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        statuses = set(await session.scalars(select(WebhookEvent.status)))
    assert statuses == {EventStatus.processed}, "every delivery handled, none failed"
    return await stack.order(shop, payload["order_id"])


async def refund_effect(stack: Stack, external_id: int) -> dict[str, Any]:
    async with stack.resources.sessionmaker() as session:
        effect: dict[str, Any] | None = await session.scalar(
            select(Refund.effect).where(Refund.external_id == str(external_id))
        )
    assert effect is not None
    return effect


@pytest.mark.parametrize("legacy", [False, True], ids=["refund_shipping_lines", "adjustment"])
async def test_a_shipping_only_refund_takes_no_cashback_back(stack: Stack, legacy: bool) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    assert (await credited(stack, shop, paid_order(id=order_id)))["credited_amount"] == "4.38"
    payload = refund_2026(
        order_id=order_id, shipping="5.00", transactions=[("5.00", "USD")], legacy_shipping=legacy
    )
    order = await refunded(stack, shop, payload)
    # Shipping earned nothing, so refunding it takes nothing back (it once took 0.25:
    # 4.38 × 5.00 / 87.50, read as money refunded without lines).
    assert (order["status"], order["reversed_amount"]) == ("processed", "0.00")
    effect = await refund_effect(stack, payload["id"])
    assert (effect["shipping_refunded"], effect["reversed"]) == (500, 0)


async def test_shipping_lines_and_the_old_adjustment_of_one_refund_count_once(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    await stack.client.put("/v1/program", headers=shop.auth, json={"include_shipping": True})
    order = await credited(stack, shop, paid_order(id=order_id))
    # With shipping counted: 4.375 + 5% × 5.00 = 4.625 → 4.63; shipping's share 0.25.
    assert order["credited_amount"] == "4.63"
    both = refund_2026(order_id=order_id, shipping="2.00", transactions=[("2.00", "USD")])
    both["order_adjustments"] = refund_2026(shipping="2.00", legacy_shipping=True)[
        "order_adjustments"
    ]
    order = await refunded(stack, shop, both)
    # 2.00 of 5.00 shipping refunded: 0.25 × 2/5 = 0.10 (not 0.20 for counting it twice).
    assert order["reversed_amount"] == "0.10"
    rest = refund_2026(order_id=order_id, shipping="3.00", transactions=[("3.00", "USD")])
    order = await refunded(stack, shop, rest)
    # Cumulatively all of it: 0.25 in all, so 0.15 more.
    assert (order["status"], order["reversed_amount"]) == ("partially_reversed", "0.25")
    assert order["credited_amount"] == "4.63"


def presented_in(currency: str, total: str, **overrides: Any) -> dict[str, Any]:
    """The sample order (124.70 USD) as a customer paying in `currency` saw it."""
    return paid_order(
        presentment_currency=currency,
        total_price_set=money_set("124.70", total, presentment_currency=currency),
        **overrides,
    )


async def test_a_refund_in_the_customers_currency_is_valued_at_the_orders_own_rate(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    order = await credited(stack, shop, presented_in("EUR", "115.00", id=order_id))
    assert order["credited_amount"] == "4.38"
    payload = refund_2026(order_id=order_id, transactions=[("23.00", "EUR")])
    order = await refunded(stack, shop, payload)
    # 23.00 EUR at the order's 124.70 USD / 115.00 EUR = 24.94 USD refunded without lines,
    # of 87.50 eligible: 4.38 × 24.94 / 87.50 = 1.2484… → 1.25 (not 1.15, read as USD).
    assert (order["status"], order["reversed_amount"]) == ("partially_reversed", "1.25")
    assert (await refund_effect(stack, payload["id"]))["amount_only_refunded"] == 2494


async def test_an_amount_that_cannot_be_valued_is_kept_and_shown_not_failed(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    await credited(stack, shop, presented_in("EUR", "115.00", id=order_id))
    payload = refund_2026(order_id=order_id, transactions=[("10.00", "GBP")])
    order = await refunded(stack, shop, payload)
    assert (order["status"], order["reversed_amount"]) == ("processed", "0.00")
    effect = await refund_effect(stack, payload["id"])
    assert effect["unvalued"].startswith("10.00 GBP refunded could not be valued in USD")
    [shown] = [e for e in order["history"] if e["action"] == "order.refund_unvalued"]
    assert shown["reason"] == effect["unvalued"]


async def test_a_usd_refund_on_a_yen_shop_is_valued_not_failed(stack: Stack) -> None:
    shop = await stack.create_shop(currency="JPY")
    order_id = new_order_id()
    yen = money_set("10000", "66.00", shop_currency="JPY", presentment_currency="USD")
    kimono = {
        "id": 7001,
        "title": "Kimono",
        "product_id": 8001,
        "quantity": 1,
        "current_quantity": 1,
        "price": "10000",
        "price_set": yen,
        "discount_allocations": [],
        "tax_lines": [],
        "gift_card": False,
    }
    order = paid_order(
        id=order_id,
        currency="JPY",
        presentment_currency="USD",
        total_price="10000",
        total_price_set=yen,
        line_items=[kimono],
        shipping_lines=[],
        total_shipping_price_set=None,
    )
    assert (await credited(stack, shop, order))["credited_amount"] == "500"  # 5% of ¥10,000
    payload = refund_2026(order_id=order_id, transactions=[("13.20", "USD")])
    detail = await refunded(stack, shop, payload)
    # 13.20 USD at ¥10,000 / 66.00 USD = ¥2,000 of ¥10,000 eligible: ¥500 × 1/5 = ¥100.
    assert (detail["status"], detail["reversed_amount"]) == ("partially_reversed", "100")


async def test_refunds_stored_before_this_change_read_as_before(stack: Stack) -> None:
    """Rows stored without a currency of their own are shop money, as they always were."""
    shop = await stack.create_shop()
    order_id = new_order_id()
    await credited(stack, shop, paid_order(id=order_id))
    payload = refund_2026(order_id=order_id, lines=[(SHOES, 1)], transactions=[("38.30", "USD")])
    order = await refunded(stack, shop, payload)
    assert order["reversed_amount"] == "1.80"
    async with stack.resources.sessionmaker() as session:
        row = await session.scalar(select(Refund).where(Refund.external_id == str(payload["id"])))
        assert row is not None and (row.amount_currency, row.amount_in_currency) == (None, None)
        stored = await session.scalar(select(Order).where(Order.external_id == str(order_id)))
        assert stored is not None and stored.snapshot is not None
        assert stored.snapshot["presentment_currency"] is None
