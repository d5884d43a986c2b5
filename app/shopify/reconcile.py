"""Reconciliation with Shopify: catch paid orders the webhooks missed, read back the credit
Shopify expired (`platform.expirations`), and report customers whose store credit pushed to
Shopify differs from the ledger.

Missed orders are listed through the GraphQL Admin API (`orders(query: "updated_at:>=…")`, by
cursor, throttle-aware), put in the webhook's REST shape, and fed to the normal ingestion as a
synthetic `orders/paid` inbox event (deduplicated by its event key, and by the order's
business key once handled). The listing carries each order's transactions, so what gift cards
and store credit paid is known at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

import orjson
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.money import format_minor
from app.core.resources import Resources
from app.core.uow import unit_of_work
from app.credit_sync.models import CreditSync, SyncStatus
from app.credit_sync.service import admin_api, pushes_store_credit
from app.expiry import service as expiry_service
from app.inbox import service as webhook_service
from app.ledger.models import Customer, LedgerEntry
from app.orders.models import Order
from app.shopify import admin as shopify_admin
from app.shopify import subscriptions
from app.shopify import tokens as shopify_tokens
from app.shopify.app_config import app_of
from app.shops.models import Shop

logger = logging.getLogger(__name__)

# A paid order later partly refunded still earns cashback on what was kept.
RECONCILED_FINANCIAL_STATUSES = ("paid", "partially_refunded")


@dataclass(frozen=True, slots=True)
class CustomerMismatch:
    customer_id: int
    external_id: str
    currency: str
    ledger_amount: int  # minor units the ledger holds for Shopify (skipped entries left out)
    pushed_amount: int  # minor units synced entries moved on Shopify, shortfalls left out

    @property
    def difference(self) -> int:
        return self.ledger_amount - self.pushed_amount


@dataclass
class ReconcileSummary:
    shop_domain: str
    since: date
    orders_seen: int = 0
    ingested: list[str] = field(default_factory=list)  # Shopify order ids fed to ingestion
    mismatches: list[CustomerMismatch] = field(default_factory=list)
    # Topics the service handles that the shop does not deliver to us (app installs only).
    missing_subscriptions: list[str] = field(default_factory=list)
    expired: int = 0  # expiry entries written for credits Shopify expired

    def lines(self) -> list[str]:
        lines = [
            f"shop: {self.shop_domain} since {self.since.isoformat()}",
            f"paid orders on Shopify: {self.orders_seen}",
            f"missed orders ingested: {len(self.ingested)}",
            *(f"  order {order_id}" for order_id in self.ingested),
            f"credits expired on Shopify, read back: {self.expired}",
            f"customers whose Shopify credit differs from the ledger: {len(self.mismatches)}",
        ]
        if self.missing_subscriptions:
            lines.append(f"webhook topics not subscribed: {', '.join(self.missing_subscriptions)}")
        for m in self.mismatches:
            lines.append(
                f"  customer {m.customer_id} (Shopify {m.external_id}): ledger "
                f"{format_minor(m.ledger_amount, m.currency)}, pushed "
                f"{format_minor(m.pushed_amount, m.currency)} {m.currency}"
            )
        return lines


class UnknownShop(LookupError):
    pass


async def reconcile_domain(res: Resources, domain: str, *, since: date) -> ReconcileSummary:
    async with res.sessionmaker() as session:
        shop_id = await session.scalar(select(Shop.id).where(Shop.domain == domain))
    if shop_id is None:
        raise UnknownShop(f"no shop {domain}")
    return await reconcile_shop(res, shop_id, since=since)


async def reconcile_shop(
    res: Resources, shop_id: int, *, since: date, now: datetime | None = None
) -> ReconcileSummary:
    """`now`: when expired credit is looked for (for tests)."""
    await shopify_tokens.refresh(res, shop_id)  # only when it is about to expire
    async with res.sessionmaker() as session:
        shop = await session.get_one(Shop, shop_id)
        installed_by_app = await shopify_tokens.grant_of(session, shop_id) is not None
    api = admin_api(shop, res.secrets)
    summary = ReconcileSummary(shop.domain, since)
    app = app_of(res.settings)
    if app is not None and installed_by_app:
        summary.missing_subscriptions = await subscriptions.missing_topics(
            res.http, api, app.webhook_uri
        )
    updated_at_min = datetime.combine(since, time.min, tzinfo=UTC)
    pages = shopify_admin.orders_updated_since(
        res.http,
        api,
        financial_statuses=RECONCILED_FINANCIAL_STATUSES,
        updated_at_min=updated_at_min,
    )
    async for page in pages:
        summary.orders_seen += len(page)
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            summary.ingested += await _ingest_missing(session, shop, page)
    if pushes_store_credit(shop):  # before comparing: Shopify's expirations in the ledger
        summary.expired = await expiry_service.read_shopify_expirations(
            res, shop.id, now or datetime.now(UTC), look_back=expiry_service.LOOKBACK
        )
    async with res.sessionmaker() as session:
        summary.mismatches = await customer_mismatches(session, shop.id)
    if summary.ingested or summary.mismatches or summary.missing_subscriptions:
        logger.warning(
            "reconcile %s: %d missed order(s) ingested, %d customer mismatch(es), "
            "unsubscribed topics: %s",
            shop.domain,
            len(summary.ingested),
            len(summary.mismatches),
            ", ".join(summary.missing_subscriptions) or "none",
        )
    return summary


async def _ingest_missing(
    session: AsyncSession, shop: Shop, orders: list[dict[str, Any]]
) -> list[str]:
    """Store an `orders/paid` event for each order we never saw paid; returns their ids."""
    ids = [str(order["id"]) for order in orders]
    seen_paid = set(
        await session.scalars(
            select(Order.external_id).where(
                Order.shop_id == shop.id,
                Order.external_id.in_(ids),
                Order.paid_received_at.is_not(None),
            )
        )
    )
    ingested = []
    for order_id, order in zip(ids, orders, strict=True):
        if order_id in seen_paid:
            continue
        delivery = webhook_service.Delivery(
            topic="orders/paid",
            event_key=f"reconcile:{order_id}",
            webhook_id=None,
            api_version=shop.platform_api_version,
            body=orjson.dumps(order),
        )
        stored = await webhook_service.store_event(session, shop.id, delivery)
        if not stored.duplicate:
            ingested.append(order_id)
    return ingested


async def customer_mismatches(session: AsyncSession, shop_id: int) -> list[CustomerMismatch]:
    """Customers whose synced entries (net of debit shortfalls) do not add up to their ledger
    entries meant for Shopify: failed, unfinished or shortfallen pushes."""
    meant = or_(CreditSync.status.is_(None), CreditSync.status != SyncStatus.skipped)
    ledger = func.coalesce(func.sum(LedgerEntry.amount).filter(meant), 0)
    pushed = func.coalesce(
        func.sum(LedgerEntry.amount + CreditSync.shortfall).filter(
            CreditSync.status == SyncStatus.synced
        ),
        0,
    )
    rows = await session.execute(
        select(Customer.id, Customer.external_id, LedgerEntry.currency, ledger, pushed)
        .join(Customer, Customer.id == LedgerEntry.customer_id)
        .outerjoin(CreditSync, CreditSync.ledger_entry_id == LedgerEntry.id)
        .where(LedgerEntry.shop_id == shop_id)
        .group_by(Customer.id, Customer.external_id, LedgerEntry.currency)
        .having(ledger != pushed)
        .order_by(Customer.id)
    )
    return [CustomerMismatch(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in rows]


async def reconcile_all(res: Resources, *, since: date) -> dict[str, int]:
    """Every installed shop with Admin API access; one shop's failure does not stop the rest."""
    async with res.sessionmaker() as session:
        shop_ids = list(
            await session.scalars(
                select(Shop.id)
                .where(Shop.platform_access_token.is_not(None), Shop.uninstalled_at.is_(None))
                .order_by(Shop.id)
            )
        )
    counts = {"shops": 0, "failed": 0, "ingested": 0, "mismatches": 0}
    for shop_id in shop_ids:
        try:
            summary = await reconcile_shop(res, shop_id, since=since)
        except Exception:
            logger.exception("reconcile of shop %s failed", shop_id)
            counts["failed"] += 1
            continue
        counts["shops"] += 1
        counts["ingested"] += len(summary.ingested)
        counts["mismatches"] += len(summary.mismatches)
    return counts
