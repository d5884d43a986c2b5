"""Shared steps of the platform tests: a pushing shop, credited orders, sync rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.credit_sync.models import CreditSync
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.shops.models import Shop
from tests.payloads import new_order_id, paid_order
from tests.shopify.admin_standin import TOKEN, FakeShopify
from tests.support import ShopHandle, Stack

CUSTOMER = "gid://shopify/Customer/115310627314723954"  # the sample order's customer


async def configure_shop(
    stack: Stack,
    shop: ShopHandle,
    shopify: FakeShopify,
    *,
    push: bool = True,
    api_version: str = "2025-10",
    uninstalled_at: datetime | None = None,
) -> None:
    async with stack.resources.sessionmaker() as session:
        db_shop = await session.get_one(Shop, shop.id)
        db_shop.push_store_credit = push
        db_shop.platform_access_token = stack.resources.secrets.encrypt(TOKEN)
        db_shop.platform_api_base_url = shopify.url
        db_shop.platform_api_version = api_version
        db_shop.uninstalled_at = uninstalled_at
        await session.commit()


async def ledger_entries(stack: Stack, shop: ShopHandle) -> list[int]:
    """Every ledger entry of the shop, oldest first; each must already have its sync row,
    scheduled by the ledger write itself in the same transaction."""
    async with stack.resources.sessionmaker() as session:
        rows = await session.execute(
            select(LedgerEntry.id, CreditSync.ledger_entry_id)
            .outerjoin(CreditSync, CreditSync.ledger_entry_id == LedgerEntry.id)
            .where(LedgerEntry.shop_id == shop.id)
            .order_by(LedgerEntry.id)
        )
        pairs = rows.all()
    assert all(synced is not None for _, synced in pairs), "a ledger entry has no sync row"
    return [entry_id for entry_id, _ in pairs]


async def credit_order(stack: Stack, shop: ShopHandle, **overrides: Any) -> int:
    """A paid order through the real flow (webhook, worker, ledger), then its sync pushed by
    the worker; returns the credit's ledger entry id."""
    order_id = overrides.pop("id", None) or new_order_id()
    response = await stack.deliver(shop, paid_order(id=order_id, **overrides))
    assert response.status_code == 200, response.text
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        entry_id = await session.scalar(
            select(LedgerEntry.id)
            .join(Order, Order.id == LedgerEntry.order_id)
            .where(Order.shop_id == shop.id, Order.external_id == str(order_id))
        )
    assert entry_id is not None, "the order was not credited"
    assert entry_id in await ledger_entries(stack, shop)
    return entry_id


async def sync_row(stack: Stack, entry_id: int) -> CreditSync:
    async with stack.resources.sessionmaker() as session:
        return await session.get_one(CreditSync, entry_id)
