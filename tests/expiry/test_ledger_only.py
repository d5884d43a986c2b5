"""Expiry and redemptions on a ledger-only shop, through the real API and worker: credits get
their expiry from the program when written, customers spend the soonest-expiring credit first,
the cron expires what is left at the end of the shop's day, refunds take back only what is
left, and the doctor finds every credit adding up."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app import doctor
from app.ledger.credits import expires_at
from app.shops.models import ApiKeyRole
from tests.expiry.helpers import (
    credit_order,
    customer,
    expiring_shop,
    ledger,
    parse,
    redeem,
    set_program,
    sweep,
)
from tests.payloads import SHOES, SOCKS, refund, refund_lines
from tests.support import Stack

NEW_YORK = ZoneInfo("America/New_York")


async def examine(stack: Stack) -> doctor.Report:
    async with stack.resources.sessionmaker() as session:
        return await doctor.examine(session)


async def test_a_credit_expires_at_the_end_of_the_shops_day_after_a_partial_spend(
    stack: Stack,
) -> None:
    shop = await expiring_shop(stack, days=14)
    order = await credit_order(stack, shop)
    [credit] = await ledger(stack, shop, order["customer_id"])
    credited_at, expiry = parse(credit["created_at"]), parse(credit["expires_at"])
    assert expiry == expires_at(credited_at, 14, NEW_YORK)
    local = expiry.astimezone(NEW_YORK)
    assert (local.hour, local.minute, local.second) == (23, 59, 59)
    assert local.date() == credited_at.astimezone(NEW_YORK).date() + timedelta(days=14)
    figures = (await stack.client.get("/v1/metrics/dashboard", headers=shop.auth)).json()
    assert (figures["expiring_next_30_days"], figures["expired_today"]) == ("4.38", "0.00")
    assert (await customer(stack, shop, order["customer_id"]))["expiring_soon"] == {
        "amount": "4.38",
        "expires_at": credit["expires_at"],
    }

    spent = await redeem(stack, shop, order["customer_id"], "1.00", "till-1")
    assert spent.status_code == 201, spent.text
    assert spent.json()["balance"] == "3.38"
    assert spent.json()["spent"] == [{"credit_entry_id": credit["id"], "amount": "1.00"}]

    assert await sweep(stack, expiry) == {"expired": 0, "reminded": 0}  # its last second
    assert (await sweep(stack, expiry + timedelta(seconds=1)))["expired"] == 1
    assert (await sweep(stack, expiry + timedelta(minutes=1)))["expired"] == 0  # never twice
    entries = await ledger(stack, shop, order["customer_id"])
    assert [(e["kind"], e["amount"], e["reverses_entry_id"]) for e in entries] == [
        ("expiry", "-3.38", credit["id"]),
        ("redemption", "-1.00", credit["id"]),
        ("credit", "4.38", None),
    ]
    after = await customer(stack, shop, order["customer_id"])
    assert (after["balance"], after["expiring_soon"]) == ("0.00", None)
    figures = (await stack.client.get("/v1/metrics/dashboard", headers=shop.auth)).json()
    assert figures["expired_today"] == "3.38"
    assert figures["expiring_next_30_days"] == "0.00"
    refused = await redeem(stack, shop, order["customer_id"], "0.01", "till-2")
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["balance"]) == ("insufficient_balance", "0.00")
    assert (await examine(stack)).ok


async def test_spending_takes_the_soonest_expiring_credit_first_and_never_below_zero(
    stack: Stack,
) -> None:
    shop = await expiring_shop(stack, days=60)
    first = await credit_order(stack, shop)
    await set_program(stack, shop, credit_expiry_days=5)  # later credits expire sooner
    second = await credit_order(stack, shop)
    customer_id = first["customer_id"]
    sooner, later = [e for e in await ledger(stack, shop, customer_id) if e["kind"] == "credit"]
    assert parse(sooner["expires_at"]) < parse(later["expires_at"])
    assert second["customer_id"] == customer_id

    spent = await redeem(stack, shop, customer_id, "5.00", "pos-42")
    assert spent.status_code == 201, spent.text
    assert spent.json()["spent"] == [
        {"credit_entry_id": sooner["id"], "amount": "4.38"},
        {"credit_entry_id": later["id"], "amount": "0.62"},
    ]
    again = await redeem(stack, shop, customer_id, "5.00", "pos-42")  # the same reference
    assert (again.status_code, again.json()) == (201, spent.json())
    other = await redeem(stack, shop, customer_id, "1.00", "pos-42")
    assert (other.status_code, other.json()["code"]) == (409, "redemption_reference_reused")
    too_much = await redeem(stack, shop, customer_id, "3.77", "pos-43")
    assert (too_much.status_code, too_much.json()["balance"]) == (409, "3.76")
    key = {"Idempotency-Key": "k-1"} | shop.auth
    replayed = [
        await redeem(stack, shop, customer_id, "3.76", "pos-44", headers=key) for _ in range(2)
    ]
    assert [r.status_code for r in replayed] == [201, 201]
    assert replayed[1].headers.get("Idempotent-Replayed") == "true"
    assert (await customer(stack, shop, customer_id))["balance"] == "0.00"
    # Nothing left to expire.
    assert (await sweep(stack, datetime.now(UTC) + timedelta(days=90)))["expired"] == 0
    assert (await examine(stack)).ok


async def test_redemptions_need_a_reviewer_of_the_customers_shop(stack: Stack) -> None:
    shop = await expiring_shop(stack)
    order = await credit_order(stack, shop)
    viewer = await stack.add_key(shop, ApiKeyRole.viewer)
    reviewer = await stack.add_key(shop, ApiKeyRole.reviewer)
    other = await expiring_shop(stack)
    customer_id = order["customer_id"]
    assert (await redeem(stack, shop, customer_id, "1", "a", headers=viewer)).status_code == 403
    assert (await redeem(stack, other, customer_id, "1", "a")).status_code == 404
    assert (await redeem(stack, shop, customer_id, "1", "a", headers=reviewer)).status_code == 201
    bad = await redeem(stack, shop, customer_id, "0.001", "b")
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_amount")


async def test_a_refund_before_expiry_takes_back_what_is_left_and_after_it_nothing(
    stack: Stack,
) -> None:
    shop = await expiring_shop(stack, days=30)
    before = await credit_order(stack, shop, customer=501)
    assert (await redeem(stack, shop, before["customer_id"], "1.00", "r-1")).status_code == 201
    full = refund_lines((SHOES, 2), (SOCKS, 1))
    payload = refund(id=700001, order_id=int(before["external_id"]), refund_line_items=full)
    await stack.deliver(shop, payload, topic="refunds/create")
    await stack.run_worker()
    entries = await ledger(stack, shop, before["customer_id"])
    assert [(e["kind"], e["amount"]) for e in entries] == [
        (
            "reversal",
            "-3.38",
        ),
        ("redemption", "-1.00"),
        ("credit", "4.38"),
    ]
    assert (await stack.order(shop, before["external_id"]))["status"] == "reversed"

    after = await credit_order(stack, shop, customer=502)
    [credit] = await ledger(stack, shop, after["customer_id"])
    half = refund_lines((SHOES, 1))
    partial = refund(id=700002, order_id=int(after["external_id"]), refund_line_items=half)
    await stack.deliver(shop, partial, topic="refunds/create")
    await stack.run_worker()
    assert (await customer(stack, shop, after["customer_id"]))["balance"] == "2.58"
    assert (await sweep(stack, parse(credit["expires_at"]) + timedelta(seconds=1)))["expired"] == 1
    rest = refund(
        id=700003, order_id=int(after["external_id"]), refund_line_items=refund_lines((SHOES, 1))
    )
    await stack.deliver(shop, rest, topic="refunds/create")
    await stack.run_worker()
    entries = await ledger(stack, shop, after["customer_id"])
    assert [(e["kind"], e["amount"]) for e in entries] == [
        ("expiry", "-2.58"),
        ("reversal", "-1.80"),
        ("credit", "4.38"),
    ]
    assert (await customer(stack, shop, after["customer_id"]))["balance"] == "0.00"
    assert (await examine(stack)).ok


async def test_a_program_change_leaves_earlier_credits_their_expiry(stack: Stack) -> None:
    shop = await expiring_shop(stack, days=30)
    first = await credit_order(stack, shop)
    program = await set_program(stack, shop, credit_expiry_days=10)
    assert (program["credit_expiry_days"], program["version"]) == (10, 3)
    await credit_order(stack, shop)
    await set_program(stack, shop)  # expiry off
    await credit_order(stack, shop)
    entries = await ledger(stack, shop, first["customer_id"])
    never, ten, thirty = (e for e in entries if e["kind"] == "credit")
    assert never["expires_at"] is None
    for entry, days in ((ten, 10), (thirty, 30)):
        assert parse(entry["expires_at"]) == expires_at(parse(entry["created_at"]), days, NEW_YORK)
