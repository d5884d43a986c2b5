"""Dashboard figures: counters from the hourly rollups, queues from indexed counts."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.core.money import format_minor
from app.credit_sync.models import CreditSync, SyncStatus
from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.metrics import rollup
from app.metrics.models import OrderQueues, OrderStatsHourly, ReviewTimesDaily
from app.orders.models import Order
from app.orders.state import OrderStatus
from app.shops.models import Shop

S = OrderStatsHourly
Q = OrderQueues.__table__
R = ReviewTimesDaily


class Dashboard(BaseModel):
    timezone: str = Field(description="The days below are days in this timezone.")
    currency: str
    processed_today: int
    cashback_issued_today: str
    reversed_today: str
    expired_today: str = Field(description="Credit that expired today, unspent.")
    expiring_next_30_days: str = Field(
        description="What is left of credits that expire in the next 30 days."
    )
    cashback_issued_total: str
    pending_count: int
    held_count: int
    failed_count: int
    awaiting_customer_count: int
    scheduled_amount: str = Field(description="Approved credit waiting for its award date.")
    approval_time_median_seconds: float | None = Field(
        description=(
            "Review started → decided, for the decisions of the last 30 days (UTC days, today "
            "included), from a histogram of review times: within 2.2%."
        )
    )
    approval_time_p90_seconds: float | None = Field(description="As the median.")
    processing_latency_p50_ms: float | None = Field(
        description="Paid webhook received → credit, last 24 hours."
    )
    processing_latency_p95_ms: float | None = Field(description="Last 24 hours.")
    sync_failures: int = Field(description="Ledger entries that could not reach the platform.")
    oldest_pending_seconds: float | None = Field(
        description="How long the oldest order in pending or held has waited."
    )


class DailyRow(BaseModel):
    day: date
    orders: int
    processed: int
    rejected: int
    cashback_issued: str
    reversed: str
    expired: str = Field(description="Credit that expired that day, unspent.")
    approval_time_median_seconds: float | None


class DailyFigures(BaseModel):
    timezone: str
    currency: str
    days: list[DailyRow]


class TopCustomer(BaseModel):
    customer_id: str
    external_id: str
    orders: int
    cashback_issued: str


class TopCustomers(BaseModel):
    currency: str
    items: list[TopCustomer]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def clock() -> datetime:
    """The service's now: "today" and the windows are cut from it (tests hold it still)."""
    return datetime.now(UTC)


async def dashboard(session: AsyncSession, shop: Shop, tz: ZoneInfo) -> Dashboard:
    now = clock()
    today = local_midnight(now.astimezone(tz).date(), tz)
    cur = shop.currency
    today_row = (
        await session.execute(
            select(
                func.coalesce(func.sum(S.processed), 0),
                func.coalesce(func.sum(S.cashback_issued), 0),
                func.coalesce(func.sum(S.reversed), 0),
                func.coalesce(func.sum(S.expired), 0),
            ).where(S.shop_id == shop.id, S.hour >= today)
        )
    ).one()
    expiring = await expiring_within(session, shop.id, now, now + EXPIRING_WINDOW)
    issued_total = await session.scalar(
        select(func.coalesce(func.sum(S.cashback_issued), 0)).where(S.shop_id == shop.id)
    )
    queued = (
        await session.execute(
            select(*(func.coalesce(func.sum(Q.c[name]), 0) for name in rollup.QUEUES)).where(
                Q.c.shop_id == shop.id
            )
        )
    ).one()
    counts = dict(zip(rollup.QUEUES, (int(n) for n in queued), strict=True))
    scheduled = await session.scalar(
        select(func.coalesce(func.sum(Order.award_amount), 0)).where(
            Order.shop_id == shop.id, Order.status == OrderStatus.scheduled
        )
    )
    approvals = await review_times(session, shop.id, (now - timedelta(days=29)).date())
    latency = func.extract("epoch", Order.processed_at - Order.paid_received_at) * 1000
    latencies = (
        await session.execute(
            select(
                func.percentile_cont(0.5).within_group(latency),
                func.percentile_cont(0.95).within_group(latency),
            ).where(
                Order.shop_id == shop.id,
                Order.processed_at >= now - timedelta(hours=24),
                Order.paid_received_at.is_not(None),
            )
        )
    ).one()
    sync_failures = await session.scalar(
        select(func.count()).where(
            CreditSync.shop_id == shop.id, CreditSync.status == SyncStatus.failed
        )
    )
    oldest = await session.scalar(
        select(func.min(Order.review_started_at)).where(
            Order.shop_id == shop.id,
            Order.status.in_([OrderStatus.pending, OrderStatus.held]),
        )
    )
    return Dashboard(
        timezone=tz.key,
        currency=cur,
        processed_today=int(today_row[0]),
        cashback_issued_today=format_minor(int(today_row[1]), cur),
        reversed_today=format_minor(int(today_row[2]), cur),
        expired_today=format_minor(int(today_row[3]), cur),
        expiring_next_30_days=format_minor(expiring, cur),
        cashback_issued_total=format_minor(int(issued_total or 0), cur),
        pending_count=counts["pending"],
        held_count=counts["held"],
        failed_count=counts["failed"],
        awaiting_customer_count=counts["awaiting_customer"],
        scheduled_amount=format_minor(int(scheduled or 0), cur),
        approval_time_median_seconds=_duration(percentile(approvals, 0.5)),
        approval_time_p90_seconds=_duration(percentile(approvals, 0.9)),
        processing_latency_p50_ms=_duration(latencies[0]),
        processing_latency_p95_ms=_duration(latencies[1]),
        sync_failures=int(sync_failures or 0),
        oldest_pending_seconds=(now - oldest).total_seconds() if oldest else None,
    )


EXPIRING_WINDOW = timedelta(days=30)


async def review_times(session: AsyncSession, shop_id: int, since: date) -> list[tuple[int, int]]:
    """(bucket, reviews) of the shop's decisions on UTC days from `since`, by bucket."""
    rows = await session.execute(
        select(R.bucket, func.sum(R.reviews))
        .where(R.shop_id == shop_id, R.day >= since)
        .group_by(R.bucket)
        .order_by(R.bucket)
    )
    return [(int(bucket), int(n)) for bucket, n in rows]


def percentile(histogram: list[tuple[int, int]], p: float) -> float | None:
    """The p-th percentile of the times in `histogram` ((bucket, count) by bucket), each time
    taken as its bucket's middle, and interpolated between neighbours as PostgreSQL's
    percentile_cont does; None for no times."""
    total = sum(count for _, count in histogram)
    if total == 0:
        return None
    rank = p * (total - 1)
    below, above = math.floor(rank), math.ceil(rank)

    def at(index: int) -> float:
        seen = 0
        for bucket, count in histogram:
            seen += count
            if index < seen:
                return rollup.bucket_value(bucket)
        raise AssertionError("index past the histogram")  # pragma: no cover

    low = at(below)
    return low + (rank - below) * (at(above) - low)


async def expiring_within(
    session: AsyncSession, shop_id: int, start: datetime, end: datetime
) -> int:
    """What is left of the shop's credits expiring in [start, end): the credits come from the
    partial index on (shop, expires_at), what took from them from the index on the credit."""
    credit, taken = aliased(LedgerEntry), aliased(LedgerEntry)
    consumed = (
        select(func.coalesce(func.sum(taken.amount), 0))
        .where(taken.reverses_entry_id == credit.id)
        .scalar_subquery()
    )
    left = await session.scalar(
        select(func.coalesce(func.sum(func.greatest(credit.amount + consumed, 0)), 0)).where(
            credit.shop_id == shop_id,
            credit.kind == EntryKind.credit,
            credit.expires_at.is_not(None),
            credit.expires_at >= start,
            credit.expires_at < end,
        )
    )
    return int(left or 0)


def _duration(value: object) -> float | None:
    """Seconds or milliseconds from the database (a duration, never money)."""
    return None if value is None else round(float(str(value)), 3)  # a duration


async def daily(
    session: AsyncSession, shop: Shop, tz: ZoneInfo, day_from: date, day_to: date
) -> DailyFigures:
    """One row per local day of the range (inclusive), days without activity included."""
    start, end = local_midnight(day_from, tz), local_midnight(day_to + timedelta(days=1), tz)
    local_day = func.date(func.timezone(tz.key, S.hour))
    rows = {
        row.day: row
        for row in await session.execute(
            select(
                local_day.label("day"),
                func.sum(S.orders).label("orders"),
                func.sum(S.processed).label("processed"),
                func.sum(S.rejected).label("rejected"),
                func.sum(S.cashback_issued).label("issued"),
                func.sum(S.reversed).label("reversed"),
                func.sum(S.expired).label("expired"),
            )
            .where(S.shop_id == shop.id, S.hour >= start, S.hour < end)
            .group_by(local_day)
        )
    }
    decided_day = func.date(func.timezone(tz.key, Order.decided_at))
    approval = func.extract("epoch", Order.decided_at - Order.review_started_at)
    medians = dict(
        (
            await session.execute(
                select(decided_day, func.percentile_cont(0.5).within_group(approval))
                .where(
                    Order.shop_id == shop.id,
                    Order.decided_at >= start,
                    Order.decided_at < end,
                    Order.review_started_at.is_not(None),
                )
                .group_by(decided_day)
            )
        ).all()
    )
    cur = shop.currency
    days = []
    day = day_from
    while day <= day_to:
        row = rows.get(day)
        days.append(
            DailyRow(
                day=day,
                orders=int(row.orders) if row else 0,
                processed=int(row.processed) if row else 0,
                rejected=int(row.rejected) if row else 0,
                cashback_issued=format_minor(int(row.issued) if row else 0, cur),
                reversed=format_minor(int(row.reversed) if row else 0, cur),
                expired=format_minor(int(row.expired) if row else 0, cur),
                approval_time_median_seconds=_duration(medians.get(day)),
            )
        )
        day += timedelta(days=1)
    return DailyFigures(timezone=tz.key, currency=cur, days=days)


async def top_customers(
    session: AsyncSession, shop: Shop, since: datetime, limit: int
) -> TopCustomers:
    rows = await session.execute(
        select(
            LedgerEntry.customer_id,
            Customer.external_id,
            func.count(func.distinct(LedgerEntry.order_id)),
            func.sum(LedgerEntry.amount),
        )
        .join(Customer, Customer.id == LedgerEntry.customer_id)
        .where(
            LedgerEntry.shop_id == shop.id,
            LedgerEntry.kind == EntryKind.credit,
            LedgerEntry.created_at >= since,
        )
        .group_by(LedgerEntry.customer_id, Customer.external_id)
        .order_by(func.sum(LedgerEntry.amount).desc())
        .limit(limit)
    )
    cur = shop.currency
    return TopCustomers(
        currency=cur,
        items=[
            TopCustomer(
                customer_id=str(cid),
                external_id=ext,
                orders=int(n),
                cashback_issued=format_minor(int(total), cur),
            )
            for cid, ext, n, total in rows
        ],
    )
