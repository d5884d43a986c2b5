"""Incrementally maintained figures: one upsert per change, in the change's transaction."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.events.publish import defer_dashboard_update
from app.metrics.models import OrderStatsHourly

SHARDS = 4
COUNTERS = ("orders", "processed", "rejected", "cashback_issued", "reversed")


async def bump(session: AsyncSession, shop_id: int, order_id: int, **deltas: int) -> None:
    """Add `deltas` (e.g. processed=1, cashback_issued=438) to this hour's figures."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"not a rollup counter: {sorted(unknown)}")
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
