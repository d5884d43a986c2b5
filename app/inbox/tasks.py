from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.jobs import resources, run_job
from app.core.uow import unit_of_work
from app.inbox import service
from app.inbox.drain import drain_batch, handle_event

logger = logging.getLogger(__name__)

DRAIN_BUDGET_S = 20.0  # then a fresh job carries on, well inside the job timeout
DRAIN_GRACE_S = 0.05  # seconds after its bucket ends before a drain job's last look


async def handle_webhook_event(ctx: dict[str, Any], event_id: int) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        status = await handle_event(session, event_id)
        return status.value if status else None

    async def keep_error(session: AsyncSession, error: str) -> None:
        await service.record_failure(session, event_id, error, final=False)

    async def give_up(session: AsyncSession, error: str) -> None:
        await service.record_failure(session, event_id, error, final=True)

    return await run_job(ctx, work, give_up, on_failure=keep_error)


WAKE = "drain_wake"  # ctx key: the asyncio.Event that wakes this process's drain loops


async def drain_webhook_events(ctx: dict[str, Any], bucket: int, helper: int = 0) -> dict[str, int]:
    """A ring: wake this process's drain loops, or, in a worker without them (a burst run),
    handle unhandled events a batch per transaction until none is left after the ring's
    bucket has ended; then a later ring starts a new drain."""
    wake: asyncio.Event | None = ctx.get(WAKE)
    if wake is not None:
        wake.set()
        return {"events": 0}
    res = resources(ctx)
    started = time.monotonic()
    handled = 0
    helped = helper + 1 >= service.DRAIN_FANOUT
    while time.monotonic() - started < DRAIN_BUDGET_S:
        count = await drain_batch(res, service.DRAIN_BATCH)
        handled += count
        if count == service.DRAIN_BATCH and not helped:  # a flood: share it
            helped = True
            await res.broker.enqueue([service.drain_job(bucket, helper + 1)])
        if count:
            continue
        wait = service.bucket_end(bucket) + DRAIN_GRACE_S - time.time()
        if wait <= 0:
            return {"events": handled}
        await asyncio.sleep(wait)  # an event rung in this bucket may still be committing
    # Out of time with work left: hand over to a fresh drain job.
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        service.defer_drain(session)
    return {"events": handled}
