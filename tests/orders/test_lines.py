"""An order's stored lines follow its latest snapshot's calculation, and are rewritten only when
that calculation changes them."""

from __future__ import annotations

from sqlalchemy import select

from app.orders.models import Order, OrderLine
from app.shops.models import ProcessingMode
from tests.payloads import SHOES, new_order_id, paid_order, refund, refund_lines
from tests.support import ShopHandle, Stack


async def stored_lines(
    stack: Stack, shop: ShopHandle, external_id: int
) -> list[tuple[int, str, int]]:
    async with stack.resources.sessionmaker() as session:
        rows = await session.execute(
            select(OrderLine.id, OrderLine.external_id, OrderLine.quantity)
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.shop_id == shop.id, Order.external_id == str(external_id))
            .order_by(OrderLine.id)
        )
        return [(int(i), str(e), int(q)) for i, e, q in rows.all()]


async def test_paid_after_created_keeps_the_lines_and_an_edit_rewrites_them(stack: Stack) -> None:
    shop = await stack.create_shop()
    kept, edited = new_order_id(), new_order_id()
    for order_id in (kept, edited):
        await stack.deliver(
            shop, paid_order(id=order_id, financial_status="pending"), topic="orders/create"
        )
    await stack.run_worker()
    created = await stored_lines(stack, shop, kept)
    assert len(created) == 3

    await stack.deliver(shop, paid_order(id=kept))
    more_shoes = paid_order(
        id=edited, financial_status="pending", updated_at="2026-11-20T11:00:00-05:00"
    )
    more_shoes["line_items"][0] |= {"quantity": 3, "current_quantity": 3}
    await stack.deliver(shop, more_shoes, topic="orders/updated")
    await stack.run_worker()

    assert await stored_lines(stack, shop, kept) == created  # the same rows, not rewritten
    assert (await stack.order(shop, kept))["credited_amount"] == "4.38"
    rewritten = await stored_lines(stack, shop, edited)
    assert rewritten[0][1:] == (str(SHOES), 3)
    assert min(line_id for line_id, _, _ in rewritten) > max(line_id for line_id, _, _ in created)


async def test_a_refund_before_credit_leaves_the_lines_to_be_rewritten_by_the_next_edit(
    stack: Stack,
) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.run_worker()
    assert (await stack.order(shop, order_id))["status"] == "pending"
    before = await stored_lines(stack, shop, order_id)

    one_shoe = refund(order_id=order_id, refund_line_items=refund_lines((SHOES, 1)))
    await stack.deliver(shop, one_shoe, topic="refunds/create")
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        order = (
            await session.execute(
                select(Order).where(Order.shop_id == shop.id, Order.external_id == str(order_id))
            )
        ).scalar_one()
        assert order.lines_digest is None  # the refund changed a line

    # The same snapshot again, newer: its lines are the calculation's once more.
    await stack.deliver(
        shop,
        paid_order(id=order_id, updated_at="2026-11-20T11:00:00-05:00"),
        topic="orders/updated",
    )
    await stack.run_worker()
    after = await stored_lines(stack, shop, order_id)
    assert [(e, q) for _, e, q in after] == [(e, q) for _, e, q in before]
    assert min(line_id for line_id, _, _ in after) > max(line_id for line_id, _, _ in before)
