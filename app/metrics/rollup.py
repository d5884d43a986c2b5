"""Incrementally maintained figures: one upsert per change, in the change's transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.uow import Part, Stage, uow_of
from app.events.publish import defer_dashboard_update
from app.metrics.models import OrderStatsHourly

SHARDS = 4
COUNTERS = ("orders", "processed", "rejected", "cashback_issued", "reversed", "expired", "redeemed")


async def bump(session: AsyncSession, shop_id: int, order_id: int, **deltas: int) -> None:
    """Add `deltas` (e.g. processed=1, cashback_issued=438) to this hour's figures."""
    unknown = set(deltas) - set(COUNTERS)
    if unknown:
        raise ValueError(f"not a rollup counter: {sorted(unknown)}")
    held = uow_of(session).get(FigureBumps)
    if held is not None:  # a batch: summed now, written once before the commit
        deferred = held.sums
        key = (shop_id, order_id % SHARDS)
        summed = dict(deferred.get(key, {}))  # replaced, never changed: savepoints copy
        for name, delta in deltas.items():
            summed[name] = summed.get(name, 0) + delta
        deferred[key] = summed
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
    sums: dict[tuple[int, int], dict[str, int]] = field(default_factory=dict)

    async def flush(self, session: AsyncSession) -> None:
        deferred, self.sums = self.sums, {}
        if deferred:
            await _write_sums(session, deferred)


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
