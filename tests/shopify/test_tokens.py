"""Expiring offline tokens: refreshed once across processes, refreshed on a 401, and a refused
refresh that pauses pushes (nothing failed, merchant alerted) until the merchant comes back."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text, update

from app.core.resources import Resources
from app.credit_sync.models import CreditSync, SyncStatus
from app.credit_sync.service import sync_entry
from app.notifications.models import OutboxMessage
from app.shopify.models import ShopifyGrant
from app.shopify.tokens import REAUTH_NEEDED_EVENT
from app.shops.models import Shop
from tests.credit_sync.helpers import CUSTOMER, ledger_entries, sync_row
from tests.payloads import new_order_id, paid_order
from tests.shopify.helpers import deliver, grant, install, installed_shop
from tests.shopify.standin import ShopifyStandin
from tests.support import ShopHandle, Stack, until

SHOP = "acme.myshopify.com"


async def installed(stack: Stack, shopify: ShopifyStandin) -> ShopHandle:
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    await stack.run_worker()  # webhook subscriptions
    return await installed_shop(stack, SHOP)


async def set_grant(stack: Stack, shop: ShopHandle, **values: object) -> None:
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(ShopifyGrant).where(ShopifyGrant.shop_id == shop.id).values(**values)
        )
        await session.commit()


async def expire_token(stack: Stack, shop: ShopHandle, shopify: ShopifyStandin) -> None:
    """An hour went by: the access token is dead on both sides."""
    shopify.expire_access(SHOP)
    await set_grant(stack, shop, access_token_expires_at=datetime.now(UTC) - timedelta(seconds=1))


async def pending_credits(stack: Stack, shop: ShopHandle, count: int) -> list[int]:
    """`count` paid orders credited in the ledger, their pushes left pending (the shop is
    paused while they are credited)."""
    await set_grant(stack, shop, needs_reauth_at=datetime.now(UTC))
    for _ in range(count):
        await deliver(stack, SHOP, paid_order(id=new_order_id()), topic="orders/paid")
    await stack.run_worker()
    entries = await ledger_entries(stack, shop)
    assert len(entries) == count
    for entry_id in entries:
        assert (await sync_row(stack, entry_id)).status == SyncStatus.pending
    await set_grant(stack, shop, needs_reauth_at=None)
    return entries


def refresh_waiting(shopify: ShopifyStandin) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return shopify.refresh_waiting.is_set()

    return check


def someone_waits_on_a_lock(stack: Stack) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await lock_waiters(stack) > 0

    return check


async def lock_waiters(stack: Stack) -> int:
    async with stack.resources.engine.connect() as conn:
        waiting = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return int(waiting or 0)


async def test_two_processes_needing_a_refresh_at_once_refresh_it_once(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    shop = await installed(stack, shopify)
    entries = await pending_credits(stack, shop, 2)
    await expire_token(stack, shop, shopify)
    old_refresh = (await grant(stack, shop.id)).refresh_token

    shopify.refresh_gate = asyncio.Event()  # the first refresh waits here, holding the lock
    workers = [Resources.open(stack.settings), Resources.open(stack.settings)]  # two processes
    barrier = asyncio.Barrier(2)

    async def push(res: Resources, entry_id: int) -> SyncStatus | None:
        await barrier.wait()
        return await sync_entry(res, entry_id)

    try:
        pushes = [asyncio.create_task(push(r, e)) for r, e in zip(workers, entries, strict=True)]
        await until(refresh_waiting(shopify), 10, "a refresh at Shopify")
        await until(someone_waits_on_a_lock(stack), 10, "the other process waiting on the lock")
        assert shopify.refreshes(SHOP) == 0  # none answered yet
        shopify.refresh_gate.set()
        results = await asyncio.gather(*pushes)
    finally:
        for res in workers:
            await res.close()

    assert results == [SyncStatus.synced, SyncStatus.synced]
    assert shopify.refreshes(SHOP) == 1
    assert shopify.balance(CUSTOMER) == 2 * 438
    new_grant = await grant(stack, shop.id)
    assert new_grant.refresh_token != old_refresh  # rotated, and the new pair kept
    assert new_grant.access_token_expires_at is not None
    assert new_grant.access_token_expires_at > datetime.now(UTC) + timedelta(minutes=30)
    assert shopify.invalid_queries == []


async def test_a_401_refreshes_the_token_once_and_the_push_goes_through(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    shop = await installed(stack, shopify)
    [entry_id] = await pending_credits(stack, shop, 1)
    shopify.expire_access(SHOP)  # Shopify's clock says so; ours does not know yet
    seen_before = len(shopify.seen)
    assert await sync_entry(stack.resources, entry_id) == SyncStatus.synced
    assert shopify.refreshes(SHOP) == 1
    assert shopify.balance(CUSTOMER) == 438
    graphql = f"POST /shops/{SHOP}/admin/api/2026-10/graphql.json"
    token = f"POST /shops/{SHOP}/admin/oauth/access_token"
    # Refused with 401, refreshed, sent again and applied.
    assert shopify.seen[seen_before:] == [graphql, token, graphql]


async def test_a_revoked_refresh_token_pauses_pushes_until_the_merchant_comes_back(
    stack: Stack, shopify: ShopifyStandin
) -> None:
    shop = await installed(stack, shopify)
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
        db_shop.alert_webhook_url = f"{shopify.url}/alerts"
        db_shop.outbound_webhook_secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
        await session.commit()
    await expire_token(stack, shop, shopify)
    shopify.revoke_refresh(SHOP)

    order_id = new_order_id()
    await deliver(stack, SHOP, paid_order(id=order_id), topic="orders/paid")
    await stack.run_worker()
    [entry_id] = await ledger_entries(stack, shop)
    sync = await sync_row(stack, entry_id)
    assert sync.status == SyncStatus.pending  # waiting, not failed
    paused = await grant(stack, shop.id)
    assert paused.needs_reauth_at is not None and "revoked" in (paused.reauth_reason or "")
    [alert] = [a for a in shopify.alerts if a["type"] == REAUTH_NEEDED_EVENT]
    assert alert["data"]["shop"] == SHOP
    assert shopify.mutations == []

    # More work while paused waits too, and a worker run changes nothing.
    await stack.run_worker()
    assert (await sync_row(stack, entry_id)).status == SyncStatus.pending

    # The merchant opens the app again: OAuth, a new grant, and the waiting push goes out.
    assert (await install(stack, shopify.url, SHOP)).status_code == 302
    assert (await grant(stack, shop.id)).needs_reauth_at is None
    await stack.run_worker()
    assert (await sync_row(stack, entry_id)).status == SyncStatus.synced
    await deliver(stack, SHOP, paid_order(id=order_id), topic="orders/paid")  # a re-delivery
    await stack.run_worker()
    assert await stack.credit_count(shop) == 1
    assert shopify.balance(CUSTOMER) == 438
    assert len(shopify.mutations) == 1
    async with stack.resources.sessionmaker() as session:
        failed = await session.scalar(
            select(CreditSync).where(CreditSync.status == SyncStatus.failed)
        )
        alerts = list(
            await session.scalars(
                select(OutboxMessage.event_type).where(OutboxMessage.shop_id == shop.id)
            )
        )
    assert failed is None
    assert alerts == [REAUTH_NEEDED_EVENT]
