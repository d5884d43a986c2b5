"""Orders in the shapes Shopify sends today, end to end through the real worker: tips are
line items, order edits show in `current_quantity`, B2B orders name a company location.

The sample order: 2 shoes at 40.00 less an 8.00 discount (72.00), a 25.00 gift card, socks at
15.50; 5% half up. Every amount below is worked out from those."""

from __future__ import annotations

from typing import Any

from app.orders.service import B2B_WITHOUT_LOCATION
from tests.payloads import SHOES, SOCKS, new_order_id, paid_order, refund_2026, tip_line
from tests.support import ShopHandle, Stack


def lines_of(order: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {
        line["external_id"]: (line["cashback_amount"], line["reason"]) for line in order["lines"]
    }


async def handled(stack: Stack, shop: ShopHandle, payload: dict[str, Any]) -> dict[str, Any]:
    assert (await stack.deliver(shop, payload)).json()["result"] == "accepted"
    await stack.run_worker()
    return await stack.order(shop, payload["id"])


async def test_a_tip_and_a_line_an_edit_removed_earn_nothing_and_say_why(stack: Stack) -> None:
    shop = await stack.create_shop()
    payload = paid_order(id=new_order_id())
    payload["line_items"].append(tip_line("5.00"))
    payload["line_items"][2]["current_quantity"] = 0  # the socks were edited off the order
    order = await handled(stack, shop, payload)
    # Only the shoes earn: 5% × 72.00 = 3.60 (not 3.85 with the tip, nor 4.38 with socks).
    assert (order["status"], order["credited_amount"]) == ("processed", "3.60")
    by_line = lines_of(order)
    assert by_line[str(SHOES)] == ("3.60", None)
    assert by_line[str(SOCKS)] == ("0.00", "removed")
    assert by_line["990000000001"] == ("0.00", "tip")
    [tip] = [line for line in order["lines"] if line["external_id"] == "990000000001"]
    assert tip["rate_source"] == "tip"


async def test_a_tip_of_no_tip_object_is_known_by_its_shape(stack: Stack) -> None:
    shop = await stack.create_shop()
    payload = paid_order(id=new_order_id())
    bare = tip_line("10.00")
    del bare["tip"]  # older payloads: a "Tip" line of no product
    payload["line_items"].append(bare)
    order = await handled(stack, shop, payload)
    assert order["credited_amount"] == "4.38"


async def test_units_taken_back_by_a_refund_are_counted_once_not_twice(stack: Stack) -> None:
    """`current_quantity` drops after a refund too: the refund path takes those units back,
    so a snapshot's calculation keeps them (else the customer would lose them twice)."""
    shop = await stack.create_shop()
    order_id = new_order_id()
    after_refund = paid_order(
        id=order_id,
        customer=None,  # a guest: the order waits for the account, the refund waits too
        refunds=[{"id": 1, "refund_line_items": [{"line_item_id": SHOES, "quantity": 1}]}],
    )
    after_refund["line_items"][0]["current_quantity"] = 1
    await stack.deliver(
        shop,
        refund_2026(order_id=order_id, lines=[(SHOES, 1)], transactions=[("38.30", "USD")]),
        topic="refunds/create",
    )
    order = await handled(stack, shop, after_refund)
    assert order["status"] == "awaiting_customer"
    assert order["cashback_amount"] == "4.38"  # both shoes: one is the refund's to take back

    customer = {**paid_order()["customer"], "email": after_refund["email"]}
    await stack.deliver(shop, customer, topic="customers/create")
    await stack.run_worker()
    order = await stack.order(shop, order_id)
    # Credited, then the waiting refund takes the one shoe's 1.80 back: 2.58 kept. Counted
    # twice, the snapshot would credit 2.58 and the refund take its last shoe: 0.78 kept.
    assert (order["credited_amount"], order["reversed_amount"]) == ("4.38", "1.80")
    balance = await stack.client.get(f"/v1/customers/{order['customer_id']}", headers=shop.auth)
    assert balance.json()["balance"] == "2.58"


async def test_a_b2b_order_is_credited_to_its_company_location(stack: Stack) -> None:
    shop = await stack.create_shop()
    payload = paid_order(id=new_order_id(), company={"id": 4411, "location_id": 5522})
    order = await handled(stack, shop, payload)
    assert order["status"] == "processed"
    async with stack.resources.sessionmaker() as session:
        from sqlalchemy import select

        from app.orders.models import Order

        snapshot = await session.scalar(
            select(Order.snapshot).where(Order.external_id == str(payload["id"]))
        )
    assert snapshot is not None
    assert (snapshot["b2b"], snapshot["company_location_id"]) == (True, "5522")


async def test_a_b2b_order_without_a_location_is_held_never_credited_to_the_company(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    payload = paid_order(id=new_order_id(), company={"id": 4411})
    order = await handled(stack, shop, payload)
    assert (order["status"], order["hold_reasons"]) == ("held", [B2B_WITHOUT_LOCATION])
    assert await stack.credit_count(shop) == 0


def test_a_presentment_total_that_cannot_be_read_never_fails_the_order() -> None:
    """The customer's total only values refunds in their currency: unreadable, it is unknown."""
    from app.shopify.payloads import parse_order
    from tests.payloads import money_set

    payload = paid_order(
        currency="KWD",
        presentment_currency="USD",
        total_price="124.700",
        total_price_set=money_set(
            "124.700", "124.705", shop_currency="KWD", presentment_currency="USD"
        ),
        line_items=[],
        shipping_lines=[],
    )
    order = parse_order(payload, "orders/paid")
    assert (order.total_amount, order.presentment_currency) == (124700, "USD")
    assert order.presentment_total_amount is None  # 124.705 is no USD amount
    euros = parse_order(
        paid_order(
            presentment_currency="EUR",
            total_price_set=money_set("124.70", "115.00", presentment_currency="EUR"),
        ),
        "orders/paid",
    )
    assert (euros.presentment_currency, euros.presentment_total_amount) == ("EUR", 11500)
