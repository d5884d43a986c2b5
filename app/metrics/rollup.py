"""Incrementally maintained figures: one upsert per change, in the change's transaction."""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.uow import Part, Stage, uow_of
from app.events.publish import defer_dashboard_update
from app.metrics.models import OrderQueues, OrderStatsHourly, ReviewTimesDaily

SHARDS = 4
_BATCH_SHARDS = itertools.count(os.getpid())  # per process, a different start in each
COUNTERS = ("orders", "processed", "rejected", "cashback_issued", "reversed", "expired", "redeemed")
QUEUES = ("pending", "held", "failed", "awaiting_customer")  # statuses counted as they change
BUCKETS_PER_DOUBLING = 16  # review-time buckets: each 2^(1/16) ≈ 4.4% wider than the last


def review_bucket(seconds: float) -> int:
    """The histogram bucket of a review time: b holds 2^(b/16) to 2^((b+1)/16) seconds, and
    bucket 0 everything under 2^(1/16) s (the migration's backfill computes the same)."""
    return math.floor(BUCKETS_PER_DOUBLING * math.log2(max(seconds, 1.0)))


def bucket_value(bucket: int) -> float:
    """What a bucket stands for: its geometric middle, within 2.2% of every time in it."""
    return float(2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING))


async def bump(session: AsyncSession, shop_id: int, order_id: int, **deltas: int) -> None:
    """Add `deltas` (e.g. processed=1, cashback_issued=438) to this hour's figures."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"not a rollup counter: {sorted(unknown)}")
    held = uow_of(session).get(FigureBumps)
    if held is not None:  # a batch: summed now, written once before the commit
        _add(held.sums, (shop_id, held.shard), deltas)
        return
    table = OrderStatsHourly.__table__
    stmt = insert(OrderStatsHourly).values(
        shop_id=shop_id,
        hour=func.date_trunc("hour", func.now()),
        shard=order_id % SHARDS,
        **deltas,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.shop_id, table.c.hour, table.c.shard],
        set_={name: table.c[name] + stmt.excluded[name] for name in deltas},
    )
    await session.execute(stmt)
    defer_dashboard_update(session, shop_id)  # the frontend refetches, after the commit


def _add(
    sums: dict[tuple[int, int], dict[str, int]], key: tuple[int, int], deltas: dict[str, int]
) -> None:
    """Add `deltas` to the sums of `key`. The inner dict is replaced, never changed: a
    savepoint's copy of the part keeps the sums as they were."""
    summed = dict(sums.get(key, {}))
    for name, delta in deltas.items():
        summed[name] = summed.get(name, 0) + delta
    sums[key] = summed


def _upsert_figures() -> Any:
    table = OrderStatsHourly.__table__
    stmt = insert(OrderStatsHourly).values(
        shop_id=bindparam("figure_shop"),
        hour=func.date_trunc("hour", func.now()),
        shard=bindparam("figure_shard"),
        **{name: bindparam(f"figure_{name}") for name in COUNTERS},
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.shop_id, table.c.hour, table.c.shard],
        set_={name: table.c[name] + stmt.excluded[name] for name in COUNTERS},
    )


# Built once: statements built per batch cost more client CPU than their round trips.
_UPSERT_FIGURES = _upsert_figures()


@dataclass
class FigureBumps(Part):
    """A batch's bumps, summed per figure row instead of written each, and written at the end
    (one upsert per row, sent together). The figure rows are then locked only for the commit,
    in one order: batches running side by side do not queue behind each other's rows for their
    whole length."""

    stage = Stage.FIGURES
    batched = True
    # All of a batch's figures go to one shard, and the next batch of the process takes the
    # next: two batches side by side lock different rows, where one shard per order made every
    # batch of 30 orders lock all four, and the second wait for the first's commit (1.5 ms an
    # upsert at 700 orders/s, pg_stat_statements). Readers sum the shards; one shard's queue
    # count alone may go below zero (an order counted in on one, out on another).
    shard: int = field(default_factory=lambda: next(_BATCH_SHARDS) % SHARDS)
    sums: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    queues: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)
    reviews: dict[tuple[int, int], int] = field(default_factory=dict)  # (shop, bucket): count

    async def flush(self, session: AsyncSession) -> None:
        deferred, self.sums = self.sums, {}
        queues, self.queues = self.queues, {}
        reviews, self.reviews = self.reviews, {}
        if deferred:
            await _write_sums(session, deferred)
        moved = [
            {"queue_shop": shop_id, "queue_shard": shard}
            | {f"queue_{name}": queues[shop_id, shard].get(name, 0) for name in QUEUES}
            for shop_id, shard in sorted(queues)
        ]
        if moved:
            await session.execute(_UPSERT_QUEUES, moved)
        decided = [
            {"review_shop": shop_id, "review_bucket": bucket, "review_count": count}
            for (shop_id, bucket), count in sorted(reviews.items())
        ]
        if decided:
            await session.execute(_UPSERT_REVIEWS, decided)


async def _write_sums(
    session: AsyncSession, deferred: dict[tuple[int, int], dict[str, int]]
) -> None:
    rows = [
        {"figure_shop": shop_id, "figure_shard": shard}
        | {f"figure_{name}": deferred[shop_id, shard].get(name, 0) for name in COUNTERS}
        for shop_id, shard in sorted(deferred)
    ]
    await session.execute(_UPSERT_FIGURES, rows)
    for shop_id in {shop_id for shop_id, _ in deferred}:
        defer_dashboard_update(session, shop_id)


def _upsert_queues() -> Any:
    table = OrderQueues.__table__
    stmt = insert(OrderQueues).values(
        shop_id=bindparam("queue_shop"),
        shard=bindparam("queue_shard"),
        **{name: bindparam(f"queue_{name}") for name in QUEUES},
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.shop_id, table.c.shard],
        set_={name: table.c[name] + stmt.excluded[name] for name in QUEUES},
    )


def _upsert_reviews() -> Any:
    table = ReviewTimesDaily.__table__
    stmt = insert(ReviewTimesDaily).values(
        shop_id=bindparam("review_shop"),
        day=func.timezone("UTC", func.now()).cast(table.c.day.type),
        bucket=bindparam("review_bucket"),
        reviews=bindparam("review_count"),
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.shop_id, table.c.day, table.c.bucket],
        set_={"reviews": table.c.reviews + stmt.excluded.reviews},
    )


_UPSERT_QUEUES = _upsert_queues()
_UPSERT_REVIEWS = _upsert_reviews()


async def status_changed(
    session: AsyncSession, shop_id: int, order_id: int, before: str, after: str
) -> None:
    """Keep the shop's queue counts as an order moves from `before` to `after` (statuses; only
    those in QUEUES are counted)."""
    deltas = {name: 0 for name in QUEUES}
    if before in deltas:
        deltas[before] -= 1
    if after in deltas:
        deltas[after] += 1
    if not any(deltas.values()):
        return
    held = uow_of(session).get(FigureBumps)
    if held is not None:  # a batch: summed now, written once before the commit
        _add(held.queues, (shop_id, held.shard), deltas)
        return
    await session.execute(
        _UPSERT_QUEUES,
        {"queue_shop": shop_id, "queue_shard": order_id % SHARDS}
        | {f"queue_{n}": d for n, d in deltas.items()},
    )


async def review_decided(session: AsyncSession, shop_id: int, seconds: float) -> None:
    """Count a review that took `seconds` in today's (UTC) histogram of the shop."""
    key = (shop_id, review_bucket(seconds))
    held = uow_of(session).get(FigureBumps)
    if held is not None:
        held.reviews[key] = held.reviews.get(key, 0) + 1
        return
    await session.execute(
        _UPSERT_REVIEWS, {"review_shop": shop_id, "review_bucket": key[1], "review_count": 1}
    )
