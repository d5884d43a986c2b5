"""The worker's side of idempotency keys: prune those past their retention, every hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Job
from app.core.idempotency import prune
from app.core.jobs import resources


async def prune_idempotency_keys(ctx: dict[str, Any]) -> int:
    res = resources(ctx)
    retention = timedelta(hours=res.settings.idempotency_retention_hours)
    return await prune(res.sessionmaker, retention, datetime.now(UTC))


FUNCTIONS: list[WorkerCoroutine] = []
CRON_JOBS: list[CronJob] = [
    cron(
        prune_idempotency_keys,
        minute=41,
        second=15,  # off the sweeper's and the review deadlines' marks
        unique=True,
        timeout=300,
    )
]


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    """Nothing to re-drive: a missed prune is done by the next one."""
    return []
