"""The arq worker: task registry, the sweeper cron, and resources opened once per process."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.typing import WorkerCoroutine
from arq.worker import Function, Worker, func
from sqlalchemy import select

from app.config import Settings
from app.kit.jobs import JOB_TIMEOUT_S, MAX_TRIES, resources
from app.kit.operations import Operation
from app.kit.queue import Job, redis_settings
from app.kit.resources import Resources
from app.notifications import tasks as notification_tasks
from app.observability.metrics import WorkerMetrics
from app.observability.worker import instrument
from app.orders import service as order_service
from app.orders.tasks import (
    AWARD_DUE_JOB,
    EVALUATE_ORDER_JOB,
    approve_pending_orders,
    award_due_order,
    award_job_id,
    evaluate_order,
    order_job_id,
)
from app.platform import tasks as platform_tasks
from app.shops.settings import APPROVE_PENDING_JOB
from app.webhooks import service as webhook_service
from app.webhooks.tasks import (
    DRAINERS,
    drain_continuously,
    drain_webhook_events,
    handle_webhook_event,
)

logger = logging.getLogger(__name__)

# Domains that declare jobs, crons and sweeper re-drives of their own.
DOMAIN_TASKS = (platform_tasks, notification_tasks)
STALE_AFTER = timedelta(minutes=1)
SWEEP_BATCH = 5000


async def sweep(ctx: dict[str, Any]) -> dict[str, int]:
    """Ring again for work whose job was lost: events unhandled and orders still `received`
    a minute after they were stored."""
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
        operation_ids = list(
            await session.scalars(
                select(Operation.id).where(
                    Operation.status == "running", Operation.updated_at < cutoff
                )
            )
        )
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
        *(Job(APPROVE_PENDING_JOB, (i,), f"operation:{i}:sweep") for i in operation_ids),
        *extra,
    ]
    await res.doorbell.ring(jobs)
    counts = {
        "events": len(event_ids),
        "orders": len(order_ids),
        "awards": len(due_ids),
        "operations": len(operation_ids),
        "other": len(extra),
    }
    if jobs:
        logger.info("sweeper re-drove %s", counts)
    return counts


def functions() -> list[Function]:
    tasks: list[WorkerCoroutine] = [
        handle_webhook_event,
        drain_webhook_events,
        evaluate_order,
        award_due_order,
        approve_pending_orders,
    ]
    for module in DOMAIN_TASKS:
        tasks += module.FUNCTIONS
    return [func(t, max_tries=MAX_TRIES, timeout=JOB_TIMEOUT_S, keep_result=0) for t in tasks]


def build_worker(
    settings: Settings, *, metrics: WorkerMetrics | None = None, **overrides: Any
) -> Worker:
    res = Resources.open(settings)
    metrics = metrics or WorkerMetrics()
    drainers: list[asyncio.Task[None]] = []

    async def startup(_: dict[str, Any]) -> None:
        if not overrides.get("burst"):  # a long-running worker also drains without rings
            drainers.extend(
                asyncio.create_task(drain_continuously(res, idle_s=settings.worker_poll_delay))
                for _ in range(DRAINERS)
            )

    async def shutdown(_: dict[str, Any]) -> None:
        for task in drainers:
            task.cancel()
        await asyncio.gather(*drainers, return_exceptions=True)
        await res.close()

    options: dict[str, Any] = {
        "functions": [instrument(f, metrics) for f in functions()],
        "cron_jobs": [
            cron(sweep, second=0, timeout=60, run_at_startup=True),
            *(job for module in DOMAIN_TASKS for job in module.CRON_JOBS),
        ],
        "redis_settings": redis_settings(settings.redis_url or ""),
        "queue_name": settings.queue_name,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay,
        "job_timeout": JOB_TIMEOUT_S,
        "keep_result": 0,
        "ctx": {"resources": res, "metrics": metrics},
        "health_check_interval": settings.worker_health_interval,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "handle_signals": True,
    }
    options.update(overrides)
    return Worker(**options)
