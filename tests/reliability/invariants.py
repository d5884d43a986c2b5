"""The ledger invariants every reliability scenario ends with (the checks of `cashback doctor`),
and the accounting of the scenario's own orders."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import doctor
from app.orders.models import Order
from app.orders.state import OrderStatus

# Where a paid order may legitimately end: anything but `received` (or missing).
ACCOUNTED = frozenset(OrderStatus) - {OrderStatus.received}


async def assert_invariants(
    sessions: async_sessionmaker[AsyncSession], *, window: timedelta = timedelta(0)
) -> doctor.Report:
    """Every invariant holds; with no window, no work may be left unhandled either."""
    async with sessions() as session:
        report = await doctor.examine(session, window=window)
    assert report.ok, "\n".join(report.lines())
    return report


async def assert_accounted(
    sessions: async_sessionmaker[AsyncSession], shop_id: int, external_ids: Iterable[object]
) -> dict[str, str]:
    """Each of the scenario's orders exists and has left `received`; returns their statuses."""
    wanted = {str(i) for i in external_ids}
    async with sessions() as session:
        rows = await session.execute(
            select(Order.external_id, Order.status).where(
                Order.shop_id == shop_id, Order.external_id.in_(wanted)
            )
        )
        statuses = {external_id: str(status) for external_id, status in rows}
    lost = wanted - set(statuses)
    stuck = {i for i, s in statuses.items() if s not in ACCOUNTED}
    assert not lost, f"orders lost: {sorted(lost)}"
    assert not stuck, f"orders stuck in received: {sorted(stuck)}"
    return statuses
