from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.jobs import run_job
from app.orders import service

EVALUATE_ORDER_JOB = "evaluate_order"


def order_job_id(order_id: int) -> str:
    return f"order:{order_id}:evaluate"


async def evaluate_order(ctx: dict[str, Any], order_id: int) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        status = await service.evaluate_order(session, order_id)
        return status.value if status else None

    async def give_up(session: AsyncSession, error: str) -> None:
        order = await service.lock_order(session, order_id)
        if order is not None:
            await service.mark_failed(session, order, error)

    return await run_job(ctx, work, give_up)
