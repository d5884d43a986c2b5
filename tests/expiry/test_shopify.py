"""Expiry on a shop that pushes its credit to Shopify (the stand-in): the push carries
`expiresAt`, Shopify expires the credit itself, and the service reads the expiration back into
the ledger (reconciliation, the expiry cron) once; reminders ask Shopify what is left."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from app import doctor
from app.credit_sync.models import CreditSync, SyncStatus
from app.expiry import tasks
from app.ledger.models import LedgerEntry
from app.shopify.reconcile import reconcile_shop
from tests.credit_sync.helpers import CUSTOMER, configure_shop, credit_order
from tests.expiry.helpers import customer, ledger, redeem, set_program, sweep
from tests.notifications.helpers import configure
from tests.notifications.receiver import Receiver
from tests.shopify.admin_standin import FakeShopify
from tests.support import ShopHandle, Stack

SINCE = date(2026, 11, 1)


async def pushing_shop(stack: Stack, shopify: FakeShopify) -> ShopHandle:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify)
    await configure(stack, shop, timezone="Europe/Paris")
    await set_program(stack, shop, credit_expiry_days=14, reminder_days_before=[7])
    return shop


async def entry(stack: Stack, entry_id: int) -> LedgerEntry:
    async with stack.resources.sessionmaker() as session:
        return await session.get_one(LedgerEntry, entry_id)


async def test_shopify_expires_the_credit_and_reconciliation_reads_it_back_once(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    credit = await entry(stack, await credit_order(stack, shop))
    assert credit.expires_at is not None
    [push] = shopify.mutations
    assert push["input"]["expiresAt"] == credit.expires_at.isoformat()
    [on_shopify] = shopify.transactions(CUSTOMER)
    assert on_shopify.expires_at == credit.expires_at
    customer_id = str(credit.customer_id)
    refused = await redeem(stack, shop, customer_id, "1.00", "till")
    assert (refused.status_code, refused.json()["code"]) == (409, "credit_spent_on_platform")

    shopify.apply(CUSTOMER, "debit", 100, event="ORDER_PAYMENT")  # spent 1.00 at checkout
    after = credit.expires_at + timedelta(seconds=1)
    assert (await sweep(stack, after))["expired"] == 0  # Shopify's to expire, not ours
    [expiration] = shopify.expire(after)
    assert expiration.amount == 338

    later = after + timedelta(hours=1)
    summary = await reconcile_shop(stack.resources, shop.id, since=SINCE, now=later)
    assert summary.expired == 1
    assert summary.mismatches == []
    again = await reconcile_shop(stack.resources, shop.id, since=SINCE, now=later)
    assert again.expired == 0
    assert await tasks.read_shopify_expirations({"resources": stack.resources}, later) == 0
    entries = await ledger(stack, shop, customer_id)
    assert [(e["kind"], e["amount"], e["reverses_entry_id"]) for e in entries] == [
        ("expiry", "-3.38", str(credit.id)),
        ("credit", "4.38", None),
    ]
    async with stack.resources.sessionmaker() as session:
        sync = await session.get_one(CreditSync, int(entries[0]["id"]))
    assert (sync.status, sync.platform_transaction_id) == (
        SyncStatus.synced,
        f"expiration-of:{on_shopify.id}",
    )
    assert [m["name"] for m in shopify.mutations] == ["credit"]  # nothing debited for it
    assert (await customer(stack, shop, customer_id))["balance"] == "1.00"
    async with stack.resources.sessionmaker() as session:
        assert (await doctor.examine(session)).ok


async def test_the_expiry_cron_reads_an_expiration_a_few_minutes_after_it(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    credit = await entry(stack, await credit_order(stack, shop))
    assert credit.expires_at is not None
    shopify.expire(credit.expires_at + timedelta(seconds=1))
    ctx = {"resources": stack.resources}
    assert await tasks.read_shopify_expirations(ctx, credit.expires_at + timedelta(minutes=1)) == 0
    assert await tasks.read_shopify_expirations(ctx, credit.expires_at + timedelta(minutes=6)) == 1
    async with stack.resources.sessionmaker() as session:
        kinds = list(
            await session.scalars(
                select(LedgerEntry.kind)
                .where(LedgerEntry.shop_id == shop.id)
                .order_by(LedgerEntry.id)
            )
        )
    assert kinds == ["credit", "expiry"]
    assert shopify.balance(CUSTOMER) == 0


async def test_a_reminder_names_what_is_left_on_shopify(
    stack: Stack, shopify: FakeShopify, receiver: Receiver
) -> None:
    shop = await pushing_shop(stack, shopify)
    await configure(
        stack, shop, notification_webhook_url=receiver.url("/notices"), notify_customers=True
    )
    credit = await entry(stack, await credit_order(stack, shop))
    assert credit.expires_at is not None
    shopify.apply(CUSTOMER, "debit", 238, event="ORDER_PAYMENT")
    week_before = credit.expires_at - timedelta(days=7) + timedelta(hours=1)
    assert (await sweep(stack, week_before))["reminded"] == 1
    await stack.run_worker()
    assert (await sweep(stack, week_before + timedelta(minutes=1)))["reminded"] == 0
    [notice] = [r.json for r in receiver.requests if r.json["type"] == "cashback.expiring"]
    assert (notice["data"]["amount"], notice["data"]["days_before"]) == ("2.00", 7)
    assert notice["data"]["expires_on"] == credit.expires_at.date().isoformat()
