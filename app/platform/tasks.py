"""Store-credit sync jobs. Filled in by the platform work; the worker collects these."""

from __future__ import annotations

from datetime import datetime

from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.queue import Job

FUNCTIONS: list[WorkerCoroutine] = []
CRON_JOBS: list[CronJob] = []


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    """Jobs to ring again for work stored before `cutoff` and still not done."""
    return []
