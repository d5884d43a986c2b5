"""Reconciliation: paid orders the webhooks missed are ingested; mismatches are reported."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import date
from typing import Any

from sqlalchemy import select

from app.credit_sync import tasks
from app.orders.models import Order
from app.shopify.reconcile import reconcile_shop
from tests.credit_sync.helpers import configure_shop, credit_order, ledger_entries
from tests.payloads import new_order_id, paid_order
from tests.shopify.admin_standin import FakeShopify
from tests.support import ShopHandle, Stack

SINCE = date(2026, 11, 1)


def order_of(customer_id: int, **overrides: Any) -> dict[str, Any]:
    customer = {"id": customer_id, "email": f"c{customer_id}@example.com"}
    return paid_order(id=new_order_id(), customer=customer, **overrides)


async def statuses(stack: Stack, shop: ShopHandle) -> dict[str, str]:
    async with stack.resources.sessionmaker() as session:
        rows = await session.execute(
            select(Order.external_id, Order.status).where(Order.shop_id == shop.id)
        )
        return {external_id: status for external_id, status in rows.all()}


async def test_a_missed_order_is_ingested_and_a_customer_mismatch_reported(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify)
    delivered, missed, unpaid_here = order_of(1001), order_of(1002), order_of(1003)
    shopify.faults = ["user_error:CREDIT_LIMIT_EXCEEDED"]  # customer 1001's push fails
    await credit_order(stack, shop, **delivered)
    pending = {**unpaid_here, "financial_status": "pending"}
    await stack.deliver(shop, pending, topic="orders/create")  # its orders/paid was lost
    await stack.run_worker()
    shopify.orders = [delivered, missed, unpaid_here]
    shopify.page_size = 2

    summary = await reconcile_shop(stack.resources, shop.id, since=SINCE)

    assert summary.orders_seen == 3
    assert summary.ingested == [str(missed["id"]), str(unpaid_here["id"])]
    [mismatch] = summary.mismatches
    assert (mismatch.external_id, mismatch.ledger_amount, mismatch.pushed_amount) == (
        "1001",
        438,
        0,
    )
    first, second = shopify.order_queries[:2]
    assert first == {
        "query": "updated_at:>='2026-11-01T00:00:00+00:00'"
        " AND (financial_status:paid OR financial_status:partially_refunded)",
        "after": None,
    }
    assert second == {"query": first["query"], "after": "2"}  # the next page by its cursor

    await stack.run_worker()  # the synthetic events go through the normal ingestion
    assert await statuses(stack, shop) == {
        str(delivered["id"]): "processed",
        str(missed["id"]): "processed",
        str(unpaid_here["id"]): "processed",
    }
    await ledger_entries(stack, shop)
    await stack.run_worker()
    pushed = sorted(m["id"] for m in shopify.mutations[1:])
    assert pushed == ["gid://shopify/Customer/1002", "gid://shopify/Customer/1003"]

    again = await reconcile_shop(stack.resources, shop.id, since=SINCE)
    assert (again.orders_seen, again.ingested) == (3, [])
    assert [m.external_id for m in again.mismatches] == ["1001"]
    assert again.lines()[-1].endswith("ledger 4.38, pushed 0.00 USD")


async def test_a_missed_order_paid_with_a_gift_card_is_credited_on_the_rest_only(
    stack: Stack, shopify: FakeShopify
) -> None:
    """The listing carries each order's transactions: no separate read is needed, and a
    throttled page is asked again once Shopify's bucket refills."""
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify, push=False)
    missed = order_of(4001, payment_gateway_names=["gift_card", "shopify_payments"])
    shopify.add_payment(missed["id"], "gift_card", "20.00")
    shopify.add_payment(missed["id"], "shopify_payments", "104.70")
    shopify.orders = [missed]
    shopify.list_faults = ["throttle"]

    summary = await reconcile_shop(stack.resources, shop.id, since=SINCE)

    assert summary.ingested == [str(missed["id"])]
    assert len(shopify.order_queries) == 2  # throttled once, then answered
    await stack.run_worker()
    order = await stack.order(shop, missed["id"])
    # 5% × 87.50 × 104.70 / 124.70 = 3.6733… → 3.67, as the webhook path credits it.
    assert (order["status"], order["credited_amount"]) == ("processed", "3.67")
    assert order["payments"]["status"] == "payload"
    assert shopify.transaction_reads == []


async def test_the_daily_cron_reconciles_every_shop_with_access(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify, push=False)  # ledger only: orders still count
    await stack.create_shop()  # no Admin API token: left out
    shopify.orders = [order_of(2001)]

    counts = await tasks.reconcile_shops({"resources": stack.resources})

    assert counts == {"shops": 1, "failed": 0, "ingested": 1, "mismatches": 0}
    await stack.run_worker()
    assert list((await statuses(stack, shop)).values()) == ["processed"]


async def run_cli(stack: Stack, *args: str) -> tuple[int, str, str]:
    """`cashback reconcile ARGS` in a subprocess on the test's database and queue."""
    settings = stack.settings
    assert settings.database_url and settings.redis_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASHBACK_")} | {
        "CASHBACK_DATABASE_URL": settings.database_url,
        "CASHBACK_REDIS_URL": settings.redis_url,
        "CASHBACK_SECRET_KEY": settings.secret_key.get_secret_value(),
        "CASHBACK_QUEUE_NAME": settings.queue_name,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "reconcile",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    code = process.returncode
    assert code is not None  # for the type: communicate() waited for the exit
    return code, stdout.decode(), stderr.decode()


async def test_the_reconcile_command_prints_the_summary(stack: Stack, shopify: FakeShopify) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify)
    missed = order_of(3001)
    shopify.orders = [missed]

    code, out, err = await run_cli(stack, "--shop", shop.domain, "--since", "2026-11-01")

    assert code == 0, err
    assert f"shop: {shop.domain} since 2026-11-01" in out
    assert "paid orders on Shopify: 1" in out
    assert f"missed orders ingested: 1\n  order {missed['id']}" in out
    await stack.run_worker()
    assert list((await statuses(stack, shop)).values()) == ["processed"]

    code, _, err = await run_cli(stack, "--shop", "nope.myshopify.com", "--since", "2026-11-01")
    assert (code, err.strip().splitlines()[-1]) == (1, "error: no shop nope.myshopify.com")
