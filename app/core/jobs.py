"""What every arq job shares: its resources in `ctx`, one unit of work, retries with backoff."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from arq import Retry
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.resources import Resources
from app.core.uow import unit_of_work

logger = logging.getLogger(__name__)

T = TypeVar("T")

MAX_TRIES = 5
JOB_TIMEOUT_S = 30


def resources(ctx: dict[str, Any]) -> Resources:
    res: Resources = ctx["resources"]
    return res


def backoff_seconds(job_try: int) -> float:
    return float(min(2**job_try, 60))  # seconds


async def run_job(
    ctx: dict[str, Any],
    work: Callable[[AsyncSession], Awaitable[T]],
    on_final_failure: Callable[[AsyncSession, str], Awaitable[None]],
    *,
    on_failure: Callable[[AsyncSession, str], Awaitable[None]] | None = None,
) -> T | None:
    """Run `work` in one transaction. A failed try is retried with backoff; the last failed
    try calls `on_final_failure` in a fresh transaction so the failure is stored, not lost."""
    res = resources(ctx)
    job_try: int = ctx.get("job_try", 1)
    try:
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            return await work(session)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        final = job_try >= MAX_TRIES
        job_id = ctx.get("job_id")
        logger.warning("job %s try %d failed: %s", job_id, job_try, error)
        handler = on_final_failure if final else on_failure
        if handler is not None:
            try:
                async with unit_of_work(res.sessionmaker, res.broker) as session:
                    await handler(session, error)
            except Exception as handler_exc:
                # The database is most likely away (what failed the try too): the work is
                # still stored undone, so retry it (or, after the last try, the sweeper will).
                logger.warning("job %s: could not record its failure: %r", job_id, handler_exc)
        if final:
            return None
        raise Retry(defer=backoff_seconds(job_try)) from exc
