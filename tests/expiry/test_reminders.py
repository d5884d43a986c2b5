"""Reminders before credit expires: a `cashback.expiring` notice per credit and reminder, with
what is left and the date, once even when two sweeps run at the same moment; none for credit
already spent. The cron is run at the instant it would run at; the real worker sends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from app.core.resources import Resources
from app.expiry.models import ExpiryReminder
from tests.expiry.helpers import credit_order, expiring_shop, ledger, parse, redeem, sweep
from tests.notifications.helpers import configure
from tests.notifications.receiver import Receiver, verify_signature
from tests.support import ShopHandle, Stack


def expiring_notices(receiver: Receiver) -> list[dict[str, Any]]:
    return [r.json for r in receiver.requests if r.json["type"] == "cashback.expiring"]


async def reminder_shop(stack: Stack, receiver: Receiver) -> tuple[ShopHandle, str]:
    shop = await expiring_shop(stack, days=30)
    secret = await configure(
        stack, shop, notification_webhook_url=receiver.url("/notices"), notify_customers=True
    )
    return shop, secret


async def test_two_sweeps_at_once_send_one_reminder_then_the_last_day_one_more(
    stack: Stack, receiver: Receiver
) -> None:
    shop, secret = await reminder_shop(stack, receiver)
    kept = await credit_order(stack, shop, customer=601)
    spent = await credit_order(stack, shop, customer=602)
    assert (await redeem(stack, shop, spent["customer_id"], "4.38", "all")).status_code == 201
    [credit] = await ledger(stack, shop, kept["customer_id"])
    expiry = parse(credit["expires_at"])
    expires_on = expiry.astimezone(ZoneInfo("America/New_York")).date().isoformat()

    [credited] = [r.json for r in receiver.requests if r.json["type"] == "cashback.credited"][:1]
    assert credited["data"]["expires_at"] == expiry.isoformat()  # told when it is credited
    assert await sweep(stack, expiry - timedelta(days=8)) == {"expired": 0, "reminded": 0}
    week_before = expiry - timedelta(days=7) + timedelta(hours=1)
    barrier = asyncio.Barrier(2)
    other = Resources.open(stack.settings)  # a second worker's own connections

    async def sweep_at_once(resources: Resources) -> dict[str, int]:
        await barrier.wait()
        return await sweep(stack, week_before, resources)

    try:
        results = await asyncio.gather(sweep_at_once(stack.resources), sweep_at_once(other))
    finally:
        await other.close()
    assert sum(r["reminded"] for r in results) == 2  # two credits decided, each by one sweep
    await stack.run_worker()
    [notice] = expiring_notices(receiver)
    verify_signature(secret, next(r for r in receiver.requests if r.json == notice))
    assert notice["data"] | {"balance": None} == {
        "customer": {"id": "601", "email": "c601@example.com"},
        "order": {"id": kept["id"], "external_id": kept["external_id"], "name": "#1042"},
        "credit_entry_id": credit["id"],
        "amount": "4.38",
        "currency": "USD",
        "expires_at": expiry.isoformat(),
        "expires_on": expires_on,
        "days_before": 7,
        "balance": None,
    }

    assert (await redeem(stack, shop, kept["customer_id"], "1.00", "some")).status_code == 201
    assert (await sweep(stack, week_before + timedelta(days=1)))["reminded"] == 0
    day_before = expiry - timedelta(hours=20)
    assert (await sweep(stack, day_before))["reminded"] == 2
    assert (await sweep(stack, day_before + timedelta(minutes=1)))["reminded"] == 0
    await stack.run_worker()
    notices = expiring_notices(receiver)
    assert [(n["data"]["days_before"], n["data"]["amount"]) for n in notices] == [
        (7, "4.38"),
        (1, "3.38"),
    ]
    async with stack.resources.sessionmaker() as session:
        decided = (
            await session.execute(
                select(
                    ExpiryReminder.credit_entry_id,
                    ExpiryReminder.days_before,
                    ExpiryReminder.amount,
                ).order_by(ExpiryReminder.credit_entry_id, ExpiryReminder.days_before.desc())
            )
        ).all()
    # The spent customer's credit: decided, nothing left, no notice.
    spent_credit = int((await ledger(stack, shop, spent["customer_id"]))[-1]["id"])
    assert [tuple(r) for r in decided] == [
        (int(credit["id"]), 7, 438),
        (int(credit["id"]), 1, 338),
        (spent_credit, 7, 0),
        (spent_credit, 1, 0),
    ]


async def test_a_credit_found_inside_its_last_day_gets_one_reminder(
    stack: Stack, receiver: Receiver
) -> None:
    shop, _ = await reminder_shop(stack, receiver)
    order = await credit_order(stack, shop, customer=603)
    [credit] = await ledger(stack, shop, order["customer_id"])
    expiry = parse(credit["expires_at"])
    assert (await sweep(stack, expiry - timedelta(hours=2)))["reminded"] == 1
    assert (await sweep(stack, expiry + timedelta(seconds=1)))["expired"] == 1
    await stack.run_worker()
    assert [n["data"]["days_before"] for n in expiring_notices(receiver)] == [1]
