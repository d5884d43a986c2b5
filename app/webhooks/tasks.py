from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.kit.jobs import resources, run_job
from app.kit.resources import Resources
from app.kit.uow import savepoint, unit_of_work
from app.metrics import rollup
from app.observability.context import bound
from app.orders import service as order_service
from app.platform import service as platform_service
from app.webhooks import service

logger = logging.getLogger(__name__)

DRAIN_BUDGET_S = 20.0  # then a fresh job carries on, well inside the job timeout
DRAIN_GRACE_S = 0.05  # seconds after its bucket ends before a drain job's last look


async def handle_webhook_event(ctx: dict[str, Any], event_id: int) -> str | None:
    async def work(session: AsyncSession) -> str | None:
        status = await service.handle_event(session, event_id)
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
            await res.doorbell.ring([service.drain_job(bucket, helper + 1)])
        if count:
            continue
        wait = service.bucket_end(bucket) + DRAIN_GRACE_S - time.time()
        if wait <= 0:
            return {"events": handled}
        await asyncio.sleep(wait)  # an event rung in this bucket may still be committing
    # Out of time with work left: hand over to a fresh drain job.
    async with unit_of_work(res.sessionmaker, res.doorbell) as session:
        service.defer_drain(session)
    return {"events": handled}


BUSY_WAIT_S = 0.01  # seconds a batch whose orders were all busy elsewhere waits before the next

DRAINERS = 2  # drain loops per worker process: one works while another waits on the database
DRAIN_IDLE_MAX_S = 1.0  # an idle loop looks this often at most; rings bring new work sooner


async def drain_continuously(
    res: Resources,
    wake: asyncio.Event,
    *,
    idle_s: float,  # seconds
) -> None:
    """Drain the inbox for as long as the worker runs: the process's few loops do all its
    draining, so a flood makes their batches larger rather than their number. A ring (the
    `drain_webhook_events` job) sets `wake`; events are handled even when Redis drops a ring.
    Finding nothing, a loop waits for `wake` up to `idle_s` seconds, then twice as long each
    time up to DRAIN_IDLE_MAX_S, so an idle worker costs next to nothing. A loop that finds a
    full batch rings the other processes' loops to share the flood (DRAIN_FANOUT - 1 jobs of
    the current bucket, which the queue holds once each)."""
    wait = idle_s
    while True:
        wake.clear()  # a ring from now on is for events this batch may not see
        try:
            count = await drain_batch(res, service.DRAIN_BATCH)
        except Exception:
            logger.exception("draining webhook events failed; trying again shortly")
            await asyncio.sleep(DRAIN_IDLE_MAX_S)
            continue
        if count == service.DRAIN_BATCH:
            bucket = int(time.time() / service.DRAIN_BUCKET_S)
            helpers = range(1, service.DRAIN_FANOUT)
            await res.doorbell.ring([service.drain_job(bucket, helper) for helper in helpers])
        if count:
            wait = idle_s
            continue
        try:
            await asyncio.wait_for(wake.wait(), wait)
            wait = idle_s
        except TimeoutError:
            wait = min(max(wait * 2, 0.01), DRAIN_IDLE_MAX_S)


async def drain_batch(res: Resources, limit: int) -> int:
    """Claim and handle up to `limit` events in one transaction; returns how many. When the
    batch fails, it is done again one event per savepoint: an event that fails alone is
    handed to its own job, the others are handled."""
    try:
        async with unit_of_work(res.sessionmaker, res.doorbell) as session:
            claimed = await service.claim_batch(session, limit)
            if not claimed:
                return 0
            # Figures, sync rows and audit events are written once for the whole batch.
            rollup.defer_bumps(session)
            platform_service.defer_syncs(session)
            audit_service.defer(session)
            service.defer_finishing(session)
            order_service.cache_programs(session)
            previous: tuple[int, str, int] | None = None
            to_handle, busy = await service.prepare_batch(session, claimed)
            for key, event in to_handle:
                # The session does not flush on its own: what an earlier event of the batch
                # changed must be in the database before a later one reads it (the same
                # order again, or a customer, refund or product event).
                if previous is not None and (key[:2] == previous[:2] or not key[1]):
                    await session.flush()
                previous = key
                with bound():
                    await service.handle_claimed(session, event)
            await service.write_finished(session)
            await audit_service.write_deferred(session)
            await platform_service.write_deferred_syncs(session)
            await rollup.apply_deferred(session)
        if busy == len(claimed):  # every order was in another batch's hands: let it finish
            await asyncio.sleep(BUSY_WAIT_S)
        return len(claimed)
    except Exception as exc:
        logger.warning("a batch of events failed (%r); handling them one by one", exc)
    async with unit_of_work(res.sessionmaker, res.doorbell) as session:
        claimed = await service.claim_batch(session, limit)
        order_service.cache_programs(session)
        for _, event in claimed:
            event_id = event.id
            try:
                with bound():
                    async with savepoint(session):
                        await service.handle_claimed(session, event)
            except Exception as exc:
                await service.mark_batch_failure(session, event_id, f"{type(exc).__name__}: {exc}")
        return len(claimed)
