"""Refunds, cancellations, edits and late customers, end to end through the real worker."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import func, select

from app.inbox.models import EventStatus
from app.ledger.models import LedgerEntry
from app.shops.models import ProcessingMode
from tests.payloads import (
    SHOES,
    SOCKS,
    new_customer,
    new_order_id,
    paid_order,
    refund,
    refund_lines,
)
from tests.races import MAX_RACERS, race_events, stored_event_ids
from tests.support import ShopHandle, Stack

SAMPLE_ORDER = 820982911946154508


async def balance(stack: Stack, shop: ShopHandle, customer_id: str) -> str:
    response = await stack.client.get(f"/v1/customers/{customer_id}", headers=shop.auth)
    value: str = response.json()["balance"]
    return value


async def ledger_sum(stack: Stack, shop: ShopHandle) -> int:
    async with stack.resources.sessionmaker() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                LedgerEntry.shop_id == shop.id
            )
        )
    return int(total or 0)


async def credited_sample(stack: Stack, shop: ShopHandle) -> dict[str, Any]:
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert order["credited_amount"] == "4.38"
    return order


async def test_the_sample_refund_reverses_180_once_then_a_full_refund_the_rest(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    order = await credited_sample(stack, shop)
    for _ in range(2):  # the second delivery of the same refund takes nothing more
        await stack.deliver(shop, refund(), topic="refunds/create")
        await stack.run_worker()
        order = await stack.order(shop, SAMPLE_ORDER)
        assert (order["status"], order["reversed_amount"]) == ("partially_reversed", "1.80")
        assert await balance(stack, shop, order["customer_id"]) == "2.58"

    rest = refund(id=509562970, refund_line_items=refund_lines((SHOES, 1), (SOCKS, 1)))
    await stack.deliver(shop, rest, topic="refunds/create")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["reversed_amount"]) == ("reversed", "4.38")
    assert await balance(stack, shop, order["customer_id"]) == "0.00"
    ledger = (
        await stack.client.get(f"/v1/customers/{order['customer_id']}/ledger", headers=shop.auth)
    ).json()["items"]
    credit_id = ledger[-1]["id"]
    assert [(e["kind"], e["amount"], e["reverses_entry_id"]) for e in ledger] == [
        ("reversal", "-2.58", credit_id),
        ("reversal", "-1.80", credit_id),
        ("credit", "4.38", None),
    ]


async def test_a_refund_before_its_order_is_applied_when_the_order_is_credited(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, refund(), topic="refunds/create")
    await stack.run_worker()
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).json()["items"] == []
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["credited_amount"], order["reversed_amount"]) == (
        "partially_reversed",
        "4.38",
        "1.80",
    )


async def test_shipping_only_refunds_take_nothing_and_amount_only_take_a_share(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    await credited_sample(stack, shop)
    shipping = refund(
        id=1,
        refund_line_items=[],
        transactions=[{"kind": "refund", "status": "success", "amount": "5.00"}],
        order_adjustments=[{"kind": "shipping_refund", "amount": "-5.00"}],
    )
    await stack.deliver(shop, shipping, topic="refunds/create")
    await stack.run_worker()
    assert (await stack.order(shop, SAMPLE_ORDER))["status"] == "processed"
    half = refund(
        id=2,
        refund_line_items=[],
        transactions=[{"kind": "refund", "status": "success", "amount": "43.75"}],
    )
    await stack.deliver(shop, half, topic="refunds/create")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert order["reversed_amount"] == "2.19"  # 4.38 × 43.75 / 87.50, rounded half up


async def test_cancel_after_credit_takes_everything_back(stack: Stack) -> None:
    shop = await stack.create_shop()
    order = await credited_sample(stack, shop)
    await stack.deliver(shop, refund(), topic="refunds/create")
    await stack.run_worker()
    cancelled = paid_order(
        cancelled_at="2026-11-25T10:00:00-05:00",
        financial_status="refunded",
        updated_at="2026-11-25T10:00:00-05:00",
    )
    await stack.deliver(shop, cancelled, topic="orders/cancelled")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["reversed_amount"]) == ("reversed", "4.38")
    assert await balance(stack, shop, order["customer_id"]) == "0.00"


async def test_cancel_before_review_rejects_the_order(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    cancelled = paid_order(
        cancelled_at="2026-11-25T10:00:00-05:00", updated_at="2026-11-25T10:00:00-05:00"
    )
    await stack.deliver(shop, cancelled, topic="orders/cancelled")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["status_reason"]) == ("rejected", "order cancelled")
    assert await ledger_sum(stack, shop) == 0


async def test_refunds_before_credit_reduce_the_cashback_then_reverse_after(
    stack: Stack,
) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    await stack.deliver(shop, refund(), topic="refunds/create")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["cashback_amount"]) == ("pending", "2.58")
    approved = await stack.client.post(f"/v1/orders/{order['id']}/approve", headers=shop.auth)
    assert approved.json()["credited_amount"] == "2.58"
    rest = refund(id=77, refund_line_items=refund_lines((SHOES, 1), (SOCKS, 1)))
    await stack.deliver(shop, rest, topic="refunds/create")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["reversed_amount"]) == ("reversed", "2.58")
    assert await ledger_sum(stack, shop) == 0


async def test_a_fully_refunded_pending_order_is_rejected(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    everything = refund(refund_line_items=refund_lines((SHOES, 2), (SOCKS, 1)))
    await stack.deliver(shop, everything, topic="refunds/create")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["status_reason"]) == ("rejected", "order refunded")


async def test_twenty_concurrent_refunds_never_take_back_more_than_was_credited(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    await credited_sample(stack, shop)
    deliveries = [
        stack.deliver(
            shop,
            refund(id=9000 + i, refund_line_items=refund_lines((SHOES, 1), (SOCKS, 1))),
            topic="refunds/create",
        )
        for i in range(20)
    ]
    await asyncio.gather(*deliveries)
    await stack.run_worker(max_jobs=20)
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["reversed_amount"]) == ("reversed", "4.38")
    assert await ledger_sum(stack, shop) == 0


async def test_refunds_in_racing_transactions_take_back_exactly_the_credit(stack: Stack) -> None:
    """Eight refunds of a shoe and the socks each, each handled in its own transaction, all
    open at once: the order's lock serialises them; the first takes back a shoe's 1.80 and the
    socks' 0.78, the second the other shoe's 1.80, and the rest nothing."""
    shop = await stack.create_shop()
    await credited_sample(stack, shop)
    for i in range(MAX_RACERS):
        payload = refund(id=9100 + i, refund_line_items=refund_lines((SHOES, 1), (SOCKS, 1)))
        await stack.deliver(shop, payload, topic="refunds/create")
    outcomes = await race_events(stack, await stored_event_ids(stack, "refunds/create"))
    assert outcomes == [EventStatus.processed] * MAX_RACERS
    async with stack.resources.sessionmaker() as session:
        reversals = sorted(
            await session.scalars(
                select(LedgerEntry.amount).where(
                    LedgerEntry.shop_id == shop.id, LedgerEntry.kind == "reversal"
                )
            )
        )
    assert reversals == [-258, -180]  # two of the racers took something back, clamped
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["reversed_amount"]) == ("reversed", "4.38")
    assert await ledger_sum(stack, shop) == 0


async def test_a_guest_order_is_credited_once_the_customer_account_appears(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    guest = new_order_id()
    await stack.deliver(shop, paid_order(id=guest, customer=None, email="Sam.Guest@example.com"))
    await stack.run_worker()
    assert (await stack.order(shop, guest))["status"] == "awaiting_customer"
    await stack.deliver(shop, new_customer(), topic="customers/create")
    await stack.run_worker()
    order = await stack.order(shop, guest)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")
    customer = await stack.client.get(f"/v1/customers/{order['customer_id']}", headers=shop.auth)
    assert customer.json()["external_id"] == "207119551"


async def test_an_edit_recalculates_an_order_not_yet_credited(stack: Stack) -> None:
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    edited = paid_order(updated_at="2026-11-21T10:00:00-05:00")
    edited["line_items"] = [edited["line_items"][2]]  # only the socks remain
    await stack.deliver(shop, edited, topic="orders/updated")
    await stack.run_worker()
    order = await stack.order(shop, SAMPLE_ORDER)
    assert (order["status"], order["cashback_amount"]) == ("pending", "0.78")
    assert order["history"][-1]["action"] == "order.recalculated"


async def test_uninstalled_shops_stop_processing(stack: Stack) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, {"id": 1}, topic="app/uninstalled")
    await stack.run_worker()
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    assert (await stack.client.get("/v1/orders", headers=shop.auth)).json()["items"] == []
