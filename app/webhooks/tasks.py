from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.jobs import run_job
from app.webhooks import service


async def handle_webhook_event(ctx: dict[str, Any], event_id: int) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        status = await service.handle_event(session, event_id)
        return status.value if status else None

    async def keep_error(session: AsyncSession, error: str) -> None:
        await service.record_failure(session, event_id, error, final=False)

    async def give_up(session: AsyncSession, error: str) -> None:
        await service.record_failure(session, event_id, error, final=True)

    return await run_job(ctx, work, give_up, on_failure=keep_error)
