"""The sweeper: every minute, queue again the work whose job was lost.

PostgreSQL holds every piece of pending work as a row whose state says so; the queue only makes
it fast. A lost job (Redis flushed, a worker killed, a ring that failed) leaves its row undone,
and the sweeper finds it a minute later and queues its job again. Work re-driven too often is
failed with its error and the merchant alerted, instead of being queued for ever.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq.constants import in_progress_key_prefix
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import jobs as job_runner
from app.core.broker import Job
from app.core.jobs import resources
from app.core.operations import Operation
from app.core.resources import Resources
from app.core.uow import unit_of_work
from app.credit_sync import service as credit_sync
from app.credit_sync.service import SYNC_JOB
from app.inbox import service as webhook_service
from app.inbox.models import EventStatus, WebhookEvent
from app.notifications import service as notification_service
from app.observability.metrics import WorkerMetrics
from app.orders import lifecycle as order_lifecycle
from app.orders import service as order_service
from app.orders.state import OrderStatus
from app.orders.tasks import (
    AWARD_DUE_JOB,
    EVALUATE_ORDER_JOB,
    award_job_id,
    order_job_id,
)
from app.shops.models import Shop
from app.shops.shop_settings import APPROVE_PENDING_JOB
from workers.registry import DOMAIN_TASKS, in_progress_mark_s

logger = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 5000
RING_CHUNK = 500
# A job that never finishes (it overruns its timeout, or its worker dies) fails nothing: its work
# just stays undone. Each re-drive is counted (an event's `attempts`, which failed tries count
# too; an order's counter in Redis), and past this many the work is failed and the merchant
# alerted, instead of being rung for again every minute for ever.
MAX_REDRIVES = 10
REDRIVE_COUNT_TTL = timedelta(days=2)
# arq marks a running job "in progress" for the longest timeout of any job or cron (an hour:
# the daily reconciliation) and no other worker takes the job while the mark lasts. A worker
# killed mid-job leaves the mark, and the sweeper's ring is refused (same job id): the work
# would wait an hour. A mark older than any job may run (arq cancels at JOB_TIMEOUT_S) plus
# this grace belongs to a dead worker and is removed, so the job runs again.
ORPHAN_GRACE_S = 10
GAVE_UP = "gave up after {n} attempts: the job never finished (out of time, or its worker died)"


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Ring again for work whose job was lost: events unhandled and orders still `received`
    a minute after they were stored (failing those rung for MAX_REDRIVES times already)."""
    counts = await redrive(resources(ctx), datetime.now(UTC) - STALE_AFTER)
    metrics: WorkerMetrics | None = ctx.get("metrics")
    if metrics is not None:
        metrics.record_sweep(counts)
    return counts


async def redrive(res: Resources, cutoff: datetime) -> dict[str, int]:
    """Enqueue again the work stored before `cutoff` and still not done. A job still queued is
    not duplicated (same job id), and a job that runs twice finds its work done."""
    async with res.sessionmaker() as session:
        event_ids = await webhook_service.stale_events(session, cutoff, SWEEP_BATCH)
        order_ids = await order_service.stale_received_orders(session, cutoff, SWEEP_BATCH)
        due_ids = await order_service.due_awards(session, datetime.now(UTC), SWEEP_BATCH)
        # Not counted towards giving up: an order waits for its payments as long as it takes.
        payment_ids = await order_service.orders_waiting_for_payments(session, cutoff, SWEEP_BATCH)
        operation_ids = list(
            await session.scalars(
                select(Operation.id).where(
                    Operation.status == "running", Operation.updated_at < cutoff
                )
            )
        )
    event_ids, order_ids, given_up = await _give_up_endless(res, event_ids, order_ids)
    extra: list[Job] = []
    async with res.sessionmaker() as session:
        for module in DOMAIN_TASKS:
            extra += await module.stale_jobs(session, cutoff)
    jobs = [
        *(
            Job(webhook_service.HANDLE_EVENT_JOB, (i,), webhook_service.event_job_id(i))
            for i in event_ids
        ),
        *(Job(EVALUATE_ORDER_JOB, (i,), order_job_id(i)) for i in order_ids),
        *(Job(AWARD_DUE_JOB, (i,), award_job_id(i)) for i in due_ids),
        *(
            Job(order_service.READ_PAYMENTS_JOB, (i,), order_service.read_payments_job_id(i))
            for i in payment_ids
        ),
        *(Job(APPROVE_PENDING_JOB, (i,), f"operation:{i}:sweep") for i in operation_ids),
        *extra,
    ]
    jobs, worn = await _give_up_worn(res, jobs)
    given_up += worn
    await _free_orphaned(res, jobs)
    rung: list[Job] = []
    for start in range(0, len(jobs), RING_CHUNK):  # a backlog's jobs in rings Redis takes in time
        rung += await res.broker.enqueue_each(jobs[start : start + RING_CHUNK])
    await _count_redrives(res, rung)
    counts = {
        "events": len(event_ids),
        "orders": len(order_ids),
        "awards": len(due_ids),
        "payments": len(payment_ids),
        "operations": len(operation_ids),
        "other": len(extra),
        "given_up": given_up,
    }
    if jobs or given_up:
        logger.info("sweeper re-drove %s", counts)
    return counts


def _redrive_key(res: Resources, job_id: str) -> str:
    return f"{res.settings.queue_name}:redrives:{job_id}"


# Re-driven work counted in Redis, given up after MAX_REDRIVES like events (which count theirs
# in `attempts`) and orders: a scheduled award, a background approval, a store-credit push. An
# order waiting for its payments is never given up on.
COUNTED_JOBS = frozenset({EVALUATE_ORDER_JOB, AWARD_DUE_JOB, APPROVE_PENDING_JOB, SYNC_JOB})
_GIVEN_UP_AS_JOBS = frozenset({AWARD_DUE_JOB, APPROVE_PENDING_JOB, SYNC_JOB})


async def _give_up_worn(res: Resources, jobs: list[Job]) -> tuple[list[Job], int]:
    """Fail the awards, approvals and pushes re-driven MAX_REDRIVES times already (each
    through its own failure path, the merchant alerted); returns the other jobs."""
    capped = [job for job in jobs if job.function in _GIVEN_UP_AS_JOBS]
    counts = await _redrive_counts(res, [job.job_id for job in capped])
    worn = {
        job.job_id: (job, n) for job, n in zip(capped, counts, strict=True) if n >= MAX_REDRIVES
    }
    for job, attempts in worn.values():
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            await _give_up_job(session, job, GAVE_UP.format(n=attempts))
    if worn:
        logger.error("sweeper gave up on %s", sorted(worn))
    return [job for job in jobs if job.job_id not in worn], len(worn)


async def _give_up_job(session: AsyncSession, job: Job, error: str) -> None:
    subject = job.args[0]
    assert isinstance(subject, int)
    if job.function == SYNC_JOB:
        await credit_sync.give_up(session, subject, error)
    elif job.function == AWARD_DUE_JOB:
        order = await order_lifecycle.lock_order(session, subject)
        if order is not None and order.status == OrderStatus.scheduled:
            await order_lifecycle.mark_failed(session, order, error)
    elif job.function == APPROVE_PENDING_JOB:
        operation = await session.get(Operation, subject, with_for_update=True)
        if operation is not None and operation.status == "running":
            operation.status, operation.error = "failed", error
            shop = await session.get_one(Shop, operation.shop_id)
            await notification_service.enqueue_alert(
                session,
                shop,
                event_key=f"operation:{operation.id}:failed",
                event_type="operation.failed",
                payload={"operation": {"id": str(operation.id)}, "error": error},
            )


async def _give_up_endless(
    res: Resources, event_ids: list[int], order_ids: list[int]
) -> tuple[list[int], list[int], int]:
    """Fail the events and orders re-driven MAX_REDRIVES times already (through the usual
    failure path: the event and its order `failed`, the merchant alerted); returns the rest."""
    async with res.sessionmaker() as session:
        rows = await session.execute(
            select(WebhookEvent.id, WebhookEvent.attempts).where(
                WebhookEvent.id.in_(event_ids), WebhookEvent.attempts >= MAX_REDRIVES
            )
        )
        worn_events = {event_id: attempts for event_id, attempts in rows}
    order_counts = await _order_redrives(res, order_ids)
    worn_orders = {i: n for i, n in zip(order_ids, order_counts, strict=True) if n >= MAX_REDRIVES}
    for event_id, attempts in worn_events.items():
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            await _give_up_event(session, event_id, GAVE_UP.format(n=attempts))
    for order_id, attempts in worn_orders.items():
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            order = await order_lifecycle.lock_order(session, order_id)
            if order is not None and order.status == OrderStatus.received:
                await order_lifecycle.mark_failed(session, order, GAVE_UP.format(n=attempts))
    if worn_events or worn_orders:
        logger.error(
            "sweeper gave up on events %s and orders %s", sorted(worn_events), sorted(worn_orders)
        )
    return (
        [i for i in event_ids if i not in worn_events],
        [i for i in order_ids if i not in worn_orders],
        len(worn_events) + len(worn_orders),
    )


async def _give_up_event(session: AsyncSession, event_id: int, error: str) -> None:
    """The event (and its order, if stored) `failed`, the merchant alerted."""
    await webhook_service.record_failure(session, event_id, error, final=True)


async def _order_redrives(res: Resources, order_ids: list[int]) -> list[int]:
    return await _redrive_counts(res, [order_job_id(i) for i in order_ids])


async def _redrive_counts(res: Resources, job_ids: list[str]) -> list[int]:
    if not job_ids:
        return []
    try:
        values = await res.broker.redis.mget([_redrive_key(res, i) for i in job_ids])
    except Exception as exc:  # Redis away: nothing can be rung either
        logger.warning("sweeper could not read re-drive counts: %r", exc)
        return [0] * len(job_ids)
    return [int(v or 0) for v in values]


async def _free_orphaned(res: Resources, jobs: list[Job]) -> None:
    if not jobs:
        return
    queue = res.settings.queue_name
    keys = [f"{in_progress_key_prefix}{queue}:{job.job_id}" for job in jobs]
    mark_ms = in_progress_mark_s() * 1000
    # Marks of workers without crons are short and expire by themselves soon: left alone.
    short_ms = (job_runner.JOB_TIMEOUT_S + 10) * 1000
    oldest_live_ms = (job_runner.JOB_TIMEOUT_S + ORPHAN_GRACE_S) * 1000
    try:
        async with res.broker.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
            ttls: list[int] = await pipe.execute()
        orphaned = [
            key
            for key, ttl in zip(keys, ttls, strict=True)
            if ttl > short_ms and mark_ms - ttl > oldest_live_ms
        ]
        if orphaned:
            await res.broker.redis.delete(*orphaned)
            logger.warning("sweeper freed %d job(s) a dead worker left in progress", len(orphaned))
    except Exception as exc:  # Redis away: nothing can be rung either
        logger.warning("sweeper could not check for orphaned jobs: %r", exc)


async def _count_redrives(res: Resources, queued: list[Job]) -> None:
    """Count a re-drive only for a job actually queued anew: not while Redis is away, nor for
    work whose job is still waiting in a long queue."""
    event_ids = [j.args[0] for j in queued if j.function == webhook_service.HANDLE_EVENT_JOB]
    counted = [j.job_id for j in queued if j.function in COUNTED_JOBS]
    if event_ids:
        async with res.sessionmaker() as session:
            await session.execute(
                update(WebhookEvent)
                .where(WebhookEvent.id.in_(event_ids), WebhookEvent.status == EventStatus.received)
                .values(attempts=WebhookEvent.attempts + 1)
            )
            await session.commit()
    if counted:
        try:
            async with res.broker.redis.pipeline(transaction=False) as pipe:
                for job_id in counted:
                    key = _redrive_key(res, job_id)
                    pipe.incr(key)
                    pipe.expire(key, REDRIVE_COUNT_TTL)
                await pipe.execute()
        except Exception as exc:
            logger.warning("sweeper could not count re-drives: %r", exc)
