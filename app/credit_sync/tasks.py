"""Store-credit sync jobs and the daily reconciliation; the worker collects these.

The worker registers FUNCTIONS with max_tries=MAX_TRIES and timeout=JOB_TIMEOUT_S (30 s). A try
makes one mutation and at most one account read before and after it, each bounded by the
client timeout; a try cut short leaves its row in_flight, checked before anything is resent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import Retry, cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Job
from app.core.jobs import MAX_TRIES, backoff_seconds, resources
from app.core.uow import unit_of_work
from app.credit_sync import service
from app.credit_sync.service import SYNC_JOB, sync_job_id
from app.shopify import reconcile

logger = logging.getLogger(__name__)

STALE_BATCH = 5000
RECONCILE_LOOKBACK = timedelta(days=3)
RECONCILE_TIMEOUT_S = 3600


async def sync_ledger_entry(ctx: dict[str, Any], ledger_entry_id: int) -> str | None:
    """Push one ledger entry to the shop's store credit; retried with backoff, failed (and the
    merchant alerted) after the last try."""
    res = resources(ctx)
    job_try: int = ctx.get("job_try", 1)
    try:
        status = await service.sync_entry(res, ledger_entry_id)
    except Exception as exc:
        error = str(exc) if isinstance(exc, service.TryAgain) else f"{type(exc).__name__}: {exc}"
        logger.warning("sync of entry %s, try %d: %s", ledger_entry_id, job_try, error)
        if job_try >= MAX_TRIES:
            async with unit_of_work(res.sessionmaker, res.broker) as session:
                await service.give_up(session, ledger_entry_id, error)
            return "failed"
        after = exc.after_seconds if isinstance(exc, service.TryAgain) else None
        raise Retry(defer=after if after is not None else backoff_seconds(job_try)) from exc
    return status.value if status else None


async def reconcile_shops(ctx: dict[str, Any]) -> dict[str, int]:
    """Daily: every shop with Admin API access, over the last few days (overlapping runs)."""
    since = (datetime.now(UTC) - RECONCILE_LOOKBACK).date()
    return await reconcile.reconcile_all(resources(ctx), since=since)


FUNCTIONS: list[WorkerCoroutine] = [sync_ledger_entry]
CRON_JOBS: list[CronJob] = [
    cron(
        reconcile_shops,
        hour={4},
        minute={17},
        unique=True,
        timeout=RECONCILE_TIMEOUT_S,
        run_at_startup=False,
    )
]


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    """Jobs to ring again for work stored before `cutoff` and still not done."""
    entry_ids = await service.stale_syncs(session, cutoff, STALE_BATCH)
    return [Job(SYNC_JOB, (i,), sync_job_id(i)) for i in entry_ids]
