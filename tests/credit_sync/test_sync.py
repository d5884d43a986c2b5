"""Pushing ledger entries to Shopify store credit through a real worker, against the stand-in."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select, update

from app.core.uow import unit_of_work
from app.credit_sync import service
from app.credit_sync.models import CreditSync, SyncStatus
from app.credit_sync.service import schedule_sync
from app.ledger.models import EntryKind, LedgerEntry
from app.notifications.models import OutboxMessage
from app.shops.models import Shop
from tests.credit_sync.helpers import (
    CUSTOMER,
    configure_shop,
    credit_order,
    ledger_entries,
    sync_row,
)
from tests.payloads import SHOES, SOCKS, new_order_id, paid_order, refund, refund_lines
from tests.shopify.admin_standin import FakeShopify
from tests.support import ShopHandle, Stack, until
from workers.sweeper import redrive


async def pushing_shop(
    stack: Stack, shopify: FakeShopify, *, api_version: str = "2025-10"
) -> ShopHandle:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify, api_version=api_version)
    return shop


async def test_a_credit_ends_synced_with_shopify_holding_the_ledger_amount(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    entry_id = await credit_order(stack, shop)

    sync = await sync_row(stack, entry_id)
    [transaction] = shopify.transactions(CUSTOMER)
    assert (sync.status, sync.attempts, sync.platform_transaction_id, sync.error) == (
        SyncStatus.synced,
        1,
        transaction.id,
        None,
    )
    assert shopify.balance(CUSTOMER) == 438
    # 2025-10 has neither `notify` nor `note` on the input: neither is sent.
    [mutation] = shopify.mutations
    assert mutation["input"] == {"creditAmount": {"amount": "4.38", "currencyCode": "USD"}}


async def test_newer_api_versions_get_the_notify_flag_and_the_entry_note(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify, api_version="2027-01")
    entry_id = await credit_order(stack, shop)

    [mutation] = shopify.mutations
    assert mutation["input"] == {
        "creditAmount": {"amount": "4.38", "currencyCode": "USD"},
        "notify": True,
        "note": f"cashback ledger entry {entry_id}",
    }
    assert (await sync_row(stack, entry_id)).status == SyncStatus.synced


@pytest.mark.parametrize("api_version", ["2025-10", "2027-01"])
async def test_a_credit_applied_but_answered_too_late_is_found_not_sent_again(
    stack: Stack, shopify: FakeShopify, api_version: str
) -> None:
    shop = await pushing_shop(stack, shopify, api_version=api_version)
    shopify.faults = ["timeout"]
    entry_id = await credit_order(stack, shop)

    sync = await sync_row(stack, entry_id)
    [transaction] = shopify.transactions(CUSTOMER)
    assert len(shopify.mutations) == 1  # never sent twice
    assert shopify.account_reads >= 1  # looked before deciding
    assert (sync.status, sync.platform_transaction_id) == (SyncStatus.synced, transaction.id)
    assert shopify.balance(CUSTOMER) == 438


async def test_a_credit_shopify_applies_after_the_timeout_is_never_sent_again(
    stack: Stack, shopify: FakeShopify, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settle wait: after an unclear attempt, "not among the account's transactions" proves
    nothing until the attempt can no longer land. A try that comes early (re-driven by the
    sweeper) looks, finds nothing yet, and waits instead of sending a second credit."""
    monkeypatch.setattr(service, "MIN_SETTLE_S", 3.5)
    shopify.late_apply_s = 2.8  # the client gives up at 0.5 s; Shopify applies it at 2.8 s
    shop = await pushing_shop(stack, shopify)
    shopify.faults = ["applies_late"]
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))
    worker = asyncio.create_task(stack.run_worker())

    async def attempt_unclear() -> bool:
        async with stack.resources.sessionmaker() as session:
            errors = list(await session.scalars(select(CreditSync.error)))
        return any("unclear" in (error or "") for error in errors)

    await until(attempt_unclear, 30, "the first attempt to time out")
    [entry_id] = await ledger_entries(stack, shop)
    assert shopify.sends_in_flight == 1 and shopify.transactions(CUSTOMER) == []
    with pytest.raises(service.TryAgain, match="may still land"):
        await service.sync_entry(stack.resources, entry_id)  # re-driven before it settled
    await worker

    [transaction] = shopify.transactions(CUSTOMER)  # exactly one credit on Shopify
    assert len(shopify.mutations) == 1
    sync = await sync_row(stack, entry_id)
    assert (sync.status, sync.platform_transaction_id) == (SyncStatus.synced, transaction.id)
    assert shopify.balance(CUSTOMER) == 438


async def test_a_5xx_is_checked_then_sent_again_once(stack: Stack, shopify: FakeShopify) -> None:
    shop = await pushing_shop(stack, shopify)
    shopify.faults = ["http_503"]
    entry_id = await credit_order(stack, shop)

    sync = await sync_row(stack, entry_id)
    assert (sync.status, sync.attempts) == (SyncStatus.synced, 2)
    assert len(shopify.mutations) == 2
    assert shopify.account_reads == 1  # nothing there, so the second attempt went out
    assert len(shopify.transactions(CUSTOMER)) == 1
    assert shopify.balance(CUSTOMER) == 438


@pytest.mark.parametrize("fault", ["throttle", "http_429"])
async def test_a_throttled_credit_is_retried_without_checking(
    stack: Stack, shopify: FakeShopify, fault: str
) -> None:
    shop = await pushing_shop(stack, shopify)
    shopify.faults = [fault]
    entry_id = await credit_order(stack, shop)

    sync = await sync_row(stack, entry_id)
    assert (sync.status, sync.attempts) == (SyncStatus.synced, 2)
    assert shopify.account_reads == 0  # a throttled call was certainly not applied
    assert len(shopify.transactions(CUSTOMER)) == 1


async def test_user_errors_fail_the_sync_without_a_retry_and_alert(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
        db_shop.alert_webhook_url = f"{shopify.url}/alerts"
        db_shop.outbound_webhook_secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
        await session.commit()
    shopify.faults = ["user_error:CREDIT_LIMIT_EXCEEDED"]
    entry_id = await credit_order(stack, shop)

    sync = await sync_row(stack, entry_id)
    assert (sync.status, sync.attempts) == (SyncStatus.failed, 1)
    assert sync.error is not None and sync.error.startswith("CREDIT_LIMIT_EXCEEDED")
    assert len(shopify.mutations) == 1
    assert shopify.balance(CUSTOMER) == 0
    async with stack.resources.sessionmaker() as session:
        alert = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.event_key == f"sync:{entry_id}:failed")
        )
    assert alert is not None and alert.event_type == "store_credit.sync_failed"
    assert alert.payload["amount"] == "4.38" and alert.payload["error"] == sync.error


async def refund_all(stack: Stack, shop: ShopHandle, order_id: int) -> int:
    """A full refund through the real flow; returns the reversal entry, its sync pushed."""
    everything = refund(
        id=new_order_id(),
        order_id=order_id,
        refund_line_items=refund_lines((SHOES, 2), (SOCKS, 1)),
    )
    assert (await stack.deliver(shop, everything, topic="refunds/create")).status_code == 200
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        reversal = await session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.shop_id == shop.id, LedgerEntry.kind == EntryKind.reversal
            )
        )
    assert reversal is not None and reversal.amount == -438
    await ledger_entries(stack, shop)
    await stack.run_worker()
    return reversal.id


async def test_a_reversal_debits_the_credit_back(stack: Stack, shopify: FakeShopify) -> None:
    shop = await pushing_shop(stack, shopify)
    order_id = new_order_id()
    await credit_order(stack, shop, id=order_id)
    reversal_id = await refund_all(stack, shop, order_id)

    sync = await sync_row(stack, reversal_id)
    assert (sync.status, sync.shortfall) == (SyncStatus.synced, 0)
    assert [(t.kind, t.amount) for t in shopify.transactions(CUSTOMER)] == [
        ("credit", 438),
        ("debit", 438),
    ]
    assert shopify.balance(CUSTOMER) == 0


async def test_a_debit_beyond_the_balance_takes_what_is_left_and_records_the_shortfall(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    order_id = new_order_id()
    await credit_order(stack, shop, id=order_id)
    shopify.apply(CUSTOMER, "debit", 300, event="ORDER_PAYMENT")  # spent 3.00 at checkout
    reversal_id = await refund_all(stack, shop, order_id)

    sync = await sync_row(stack, reversal_id)
    debit = shopify.transactions(CUSTOMER)[-1]
    assert (sync.status, sync.shortfall, sync.attempts) == (SyncStatus.synced, 300, 2)
    assert sync.platform_transaction_id == debit.id
    assert (debit.kind, debit.amount) == ("debit", 138)
    assert [m["input"]["debitAmount"]["amount"] for m in shopify.mutations[1:]] == [
        "4.38",  # refused: INSUFFICIENT_FUNDS
        "1.38",
    ]
    assert shopify.balance(CUSTOMER) == 0


async def test_a_debit_on_a_spent_balance_is_all_shortfall(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    order_id = new_order_id()
    await credit_order(stack, shop, id=order_id)
    shopify.apply(CUSTOMER, "debit", 438, event="ORDER_PAYMENT")
    reversal_id = await refund_all(stack, shop, order_id)

    sync = await sync_row(stack, reversal_id)
    assert (sync.status, sync.shortfall, sync.platform_transaction_id) == (
        SyncStatus.synced,
        438,
        None,
    )
    assert len(shopify.transactions(CUSTOMER)) == 2  # the credit and the checkout spend


@pytest.mark.parametrize("credit_fails", [False, True])
async def test_a_reversal_waits_for_its_credit_and_follows_a_failed_one(
    stack: Stack, shopify: FakeShopify, credit_fails: bool
) -> None:
    shop = await pushing_shop(stack, shopify)
    shopify.faults = ["user_error:OWNER_NOT_FOUND"] if credit_fails else []
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.run_worker()
    reversal_id = await refund_all(stack, shop, order_id)  # both pushes queued together

    sync = await sync_row(stack, reversal_id)
    if credit_fails:
        assert sync.status == SyncStatus.failed
        assert sync.error is not None and "was never pushed" in sync.error
        assert [m["name"] for m in shopify.mutations] == ["credit"]  # no debit was sent
    else:
        assert sync.status == SyncStatus.synced
        assert [m["name"] for m in shopify.mutations] == ["credit", "debit"]
        assert shopify.balance(CUSTOMER) == 0


async def test_a_b2b_credit_goes_to_the_company_location(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    entry_id = await credit_order(stack, shop, company={"id": 555, "location_id": 777})

    location = "gid://shopify/CompanyLocation/777"
    assert [m["id"] for m in shopify.mutations] == [location]
    assert (shopify.balance(location), shopify.balance(CUSTOMER)) == (438, 0)
    assert (await sync_row(stack, entry_id)).status == SyncStatus.synced


async def test_a_b2b_order_without_a_location_is_never_pushed_to_the_company_id(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    order_id = new_order_id()
    await stack.deliver(shop, paid_order(id=order_id, company={"id": 555}))
    await stack.run_worker()
    held = await stack.order(shop, order_id)
    assert held["status"] == "held" and shopify.mutations == []
    # A reviewer who releases it sends the credit to the customer who placed the order.
    released = await stack.client.post(f"/v1/orders/{held['id']}/release", headers=shop.auth)
    assert released.json()["status"] == "processed"
    await stack.run_worker()
    assert [m["id"] for m in shopify.mutations] == [CUSTOMER]
    assert shopify.balance("gid://shopify/CompanyLocation/555") == 0


async def test_a_ledger_only_shop_is_skipped_and_nothing_is_sent(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify, push=False)  # a token, but ledger only
    entry_id = await credit_order(stack, shop)

    assert (await sync_row(stack, entry_id)).status == SyncStatus.skipped
    assert (shopify.mutations, shopify.account_reads) == ([], 0)


@pytest.mark.parametrize("stop", ["ledger_only", "uninstalled"])
async def test_a_shop_that_stops_pushing_before_the_job_runs_is_skipped(
    stack: Stack, shopify: FakeShopify, stop: str
) -> None:
    shop = await pushing_shop(stack, shopify)
    await configure_shop(stack, shop, shopify, push=False)
    entry_id = await credit_order(stack, shop)
    async with unit_of_work(stack.resources.sessionmaker, stack.resources.broker) as session:
        await session.execute(delete(CreditSync).where(CreditSync.ledger_entry_id == entry_id))
        db_shop = await session.get_one(Shop, shop.id)
        db_shop.push_store_credit = True
        await schedule_sync(session, db_shop, entry_id)  # pending, job queued on commit
    if stop == "ledger_only":
        await configure_shop(stack, shop, shopify, push=False)
    else:
        await configure_shop(stack, shop, shopify, uninstalled_at=datetime.now(UTC))
    await stack.run_worker()

    assert (await sync_row(stack, entry_id)).status == SyncStatus.skipped
    assert shopify.mutations == []


async def leave_in_flight(stack: Stack, entry_id: int, attempted_at: datetime) -> None:
    """A worker recorded the attempt and died before storing the outcome."""
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(CreditSync)
            .where(CreditSync.ledger_entry_id == entry_id)
            .values(
                status=SyncStatus.in_flight,
                attempts=1,
                attempted_at=attempted_at,
                updated_at=attempted_at,
            )
        )
        await session.commit()


@pytest.mark.parametrize("landed", [True, False])
@pytest.mark.parametrize("api_version", ["2025-10", "2027-01"])
async def test_the_sweeper_re_drives_an_abandoned_attempt_without_double_credit(
    stack: Stack, shopify: FakeShopify, landed: bool, api_version: str
) -> None:
    shop = await pushing_shop(stack, shopify)
    await configure_shop(stack, shop, shopify, push=False)  # the entry, but nothing sent yet
    entry_id = await credit_order(stack, shop)
    # On 2027-01 the lost attempt, made under 2025-10, carried no note: still recognised.
    await configure_shop(stack, shop, shopify, api_version=api_version)
    attempted_at = datetime.now(UTC) - timedelta(minutes=5)
    await leave_in_flight(stack, entry_id, attempted_at)
    if landed:
        shopify.apply(CUSTOMER, "credit", 438, created_at=attempted_at + timedelta(seconds=1))

    swept = await redrive(stack.resources, datetime.now(UTC) - timedelta(minutes=1))
    assert swept["other"] == 1
    await stack.run_worker()

    sync = await sync_row(stack, entry_id)
    [transaction] = shopify.transactions(CUSTOMER)
    assert (sync.status, sync.platform_transaction_id) == (SyncStatus.synced, transaction.id)
    assert len(shopify.mutations) == (0 if landed else 1)
    assert shopify.balance(CUSTOMER) == 438
    assert (await redrive(stack.resources, datetime.now(UTC)))["other"] == 0


async def test_an_older_credit_of_the_same_amount_is_not_taken_for_the_lost_attempt(
    stack: Stack, shopify: FakeShopify
) -> None:
    shop = await pushing_shop(stack, shopify)
    first = await credit_order(stack, shop)  # synced: its transaction is claimed
    await configure_shop(stack, shop, shopify, push=False)
    second = await credit_order(stack, shop)
    await configure_shop(stack, shop, shopify)
    attempted_at = datetime.now(UTC) - timedelta(seconds=30)
    await leave_in_flight(stack, second, attempted_at)  # it never reached Shopify

    await redrive(stack.resources, datetime.now(UTC))
    await stack.run_worker()

    first_sync, second_sync = await sync_row(stack, first), await sync_row(stack, second)
    assert second_sync.status == SyncStatus.synced
    assert first_sync.platform_transaction_id != second_sync.platform_transaction_id
    assert len(shopify.transactions(CUSTOMER)) == 2
    assert shopify.balance(CUSTOMER) == 876
