"""`cashback doctor`: silent on a healthy ledger, loud (and failing) on each broken invariant."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app import doctor
from app.config import Settings
from app.orders.models import Order
from tests.payloads import new_order_id, paid_order, refund
from tests.reliability.invariants import assert_accounted, assert_invariants
from tests.support import ShopHandle, Stack

CASHBACK = [sys.executable, "-m", "app"]


def run_doctor(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    assert settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASHBACK_")}
    return subprocess.run(
        [*CASHBACK, "doctor", *args],
        env=env | {"CASHBACK_DATABASE_URL": settings.database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def credited_shop(stack: Stack) -> tuple[ShopHandle, int]:
    """A shop with the sample order credited and partly refunded, and a second credited order."""
    shop = await stack.create_shop()
    other = new_order_id()
    await stack.deliver(shop, paid_order())
    await stack.deliver(shop, paid_order(id=other))
    await stack.run_worker()
    await stack.deliver(shop, refund(), topic="refunds/create")
    await stack.run_worker()
    await assert_accounted(stack.resources.sessionmaker, shop.id, [paid_order()["id"], other])
    return shop, other


async def execute(stack: Stack, sql: str, **params: object) -> None:
    async with stack.resources.sessionmaker() as session:
        await session.execute(text(sql), params)
        await session.commit()


async def examine(stack: Stack, **kwargs: object) -> doctor.Report:
    async with stack.resources.sessionmaker() as session:
        return await doctor.examine(session, **kwargs)  # type: ignore[arg-type]


async def test_a_healthy_ledger_passes_every_check(stack: Stack) -> None:
    await credited_shop(stack)
    report = await assert_invariants(stack.resources.sessionmaker)
    assert set(report.counts) == set(doctor.CHECKS)

    result = run_doctor(stack.settings, "--json", "--window", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    body = json.loads(result.stdout)
    assert body["ok"] is True
    assert {c["name"] for c in body["checks"] if c["ok"]} == set(doctor.CHECKS)


async def test_a_second_credit_for_an_order_is_reported_and_fails_the_command(
    stack: Stack,
) -> None:
    shop, other = await credited_shop(stack)
    # Bypass the idempotency key with a different one: the ledger accepts the row, the doctor not.
    await execute(
        stack,
        """INSERT INTO ledger_entries
             (shop_id, customer_id, order_id, kind, amount, currency, idempotency_key)
           SELECT shop_id, customer_id, order_id, 'credit', amount, currency, 'sneaky'
           FROM ledger_entries WHERE kind = 'credit' AND order_id =
             (SELECT id FROM orders WHERE shop_id = :shop AND external_id = :ext)""",
        shop=shop.id,
        ext=str(other),
    )
    report = await examine(stack)
    # Counted twice over: the order's credits, and the shop's totals no longer match its entries.
    assert report.broken() == {
        "one_credit_per_order",
        "balances_match_entries",
        "every_entry_has_sync",
    }

    result = run_doctor(stack.settings, "--json")
    assert result.returncode == 1
    body = json.loads(result.stdout)
    assert body["ok"] is False
    [double] = [f for f in body["findings"] if f["check"] == "one_credit_per_order"]
    assert double["shop_id"] == shop.id and "2 credits totalling 876" in double["detail"]

    assert "BAD  one_credit_per_order: 1 problem(s)" in report.lines()


async def test_a_reversal_beyond_its_credit_is_reported(stack: Stack) -> None:
    shop, _ = await credited_shop(stack)
    await execute(
        stack,
        """INSERT INTO ledger_entries (shop_id, customer_id, order_id, kind, amount, currency,
             idempotency_key, reverses_entry_id)
           SELECT shop_id, customer_id, order_id, 'reversal', -amount, currency, 'too-much', id
           FROM ledger_entries WHERE kind = 'credit' AND shop_id = :shop
             AND order_id = (SELECT id FROM orders WHERE external_id = :ext AND shop_id = :shop)""",
        shop=shop.id,
        ext=str(paid_order()["id"]),  # already partly reversed by the sample refund
    )
    report = await examine(stack)
    assert report.broken() == {
        "reversals_within_credit",
        "balances_match_entries",
        "every_entry_has_sync",
    }
    [over] = [f for f in report.findings if f.check == "reversals_within_credit"]
    assert "of 438 taken 618: reversed 618, expired 0" in over.detail


async def test_stuck_and_lost_work_is_reported_after_the_window_only(stack: Stack) -> None:
    shop, _ = await credited_shop(stack)
    now = datetime.now(UTC)
    old = now - timedelta(minutes=10)
    # An event never handled, and an order event handled whose order is nowhere.
    await execute(
        stack,
        """INSERT INTO webhook_events (shop_id, topic, event_key, body, status, received_at)
           VALUES (:shop, 'orders/paid', 'never-handled', '{"id": 1}'::bytea, 'received', :old),
                  (:shop, 'orders/paid', 'lost', '{"id": 424242}'::bytea, 'processed', :old)""",
        shop=shop.id,
        old=old,
    )
    async with stack.resources.sessionmaker() as session:
        session.add(Order(shop_id=shop.id, external_id="stuck", currency="USD", updated_at=old))
        await session.commit()
    report = await examine(stack, window=timedelta(minutes=5))
    assert report.broken() == {"no_event_unhandled", "no_event_without_order", "no_order_stuck"}
    [lost] = [f for f in report.findings if f.check == "no_event_without_order"]
    assert "424242" in lost.detail

    # Younger than the window: on its way, not stuck. A lost order is lost at any age.
    young = await examine(stack, window=timedelta(minutes=15))
    assert young.broken() == {"no_event_without_order"}

    # Another shop sees none of it.
    clean = await stack.create_shop()
    assert (await examine(stack, shop_id=clean.id)).ok
    result = run_doctor(stack.settings, "--shop", clean.domain)
    assert result.returncode == 0, result.stdout
    assert run_doctor(stack.settings, "--shop", "nobody.myshopify.com").returncode == 2
