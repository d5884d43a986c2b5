"""The worker's side of the weekly audit: every five minutes, send the report of each shop
whose audit time has come (once per week: see `weekly.send_due_audits`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import weekly
from app.core.broker import Job
from app.core.jobs import resources
from app.core.uow import unit_of_work


async def send_weekly_audits(ctx: dict[str, Any], now: datetime | None = None) -> int:
    """`now`: for tests."""
    res = resources(ctx)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        return await weekly.send_due_audits(session, now or datetime.now(UTC))


FUNCTIONS: list[WorkerCoroutine] = []
CRON_JOBS: list[CronJob] = [
    cron(
        send_weekly_audits,
        minute=set(range(2, 60, 5)),
        second=45,  # off the sweeper's and the review crons' marks
        unique=True,
        timeout=300,
    )
]


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    """Nothing to re-drive: a missed run is done by the next one (a day's grace), and the
    message it enqueues is the outbox's to re-drive."""
    return []
