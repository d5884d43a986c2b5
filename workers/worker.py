"""The arq worker: its settings (`build_worker`), with resources opened once per process, the
drain loops of a long-running worker, and the sweeper's cron (`workers.sweeper`)."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.worker import Worker

from app.config import Settings
from app.core import jobs
from app.core.broker import redis_settings
from app.core.resources import Resources
from app.inbox.drain import DRAINERS, drain_continuously
from app.inbox.tasks import WAKE
from app.observability.metrics import WorkerMetrics
from app.observability.worker import instrument
from workers.registry import SWEEP_TIMEOUT_S, domain_crons, functions
from workers.sweeper import sweep


def cron_jobs() -> list[CronJob]:
    return [cron(sweep, second=0, timeout=SWEEP_TIMEOUT_S, run_at_startup=True), *domain_crons()]


def build_worker(
    settings: Settings, *, metrics: WorkerMetrics | None = None, **overrides: Any
) -> Worker:
    res = Resources.open(settings)
    metrics = metrics or WorkerMetrics()
    drainers: list[asyncio.Task[None]] = []

    async def startup(ctx: dict[str, Any]) -> None:
        # What startup built lives as long as the process: out of the collector's full passes.
        gc.collect()
        gc.freeze()
        if not overrides.get("burst"):  # a long-running worker drains in loops; rings wake them
            wake = ctx[WAKE] = asyncio.Event()
            drainers.extend(
                asyncio.create_task(
                    drain_continuously(
                        res,
                        wake,
                        idle_s=settings.worker_poll_delay,
                        linger_s=settings.drain_linger_s,
                    )
                )
                for _ in range(DRAINERS)
            )

    async def shutdown(_: dict[str, Any]) -> None:
        for task in drainers:
            task.cancel()
        await asyncio.gather(*drainers, return_exceptions=True)
        await res.close()

    options: dict[str, Any] = {
        "functions": [instrument(f, metrics) for f in functions()],
        "cron_jobs": cron_jobs(),
        "redis_settings": redis_settings(settings.redis_url or ""),
        "queue_name": settings.queue_name,
        "max_jobs": settings.worker_max_jobs,
        "poll_delay": settings.worker_poll_delay,
        "job_timeout": jobs.JOB_TIMEOUT_S,
        "keep_result": 0,
        "ctx": {"resources": res, "metrics": metrics},
        "health_check_interval": settings.worker_health_interval,
        "on_startup": startup,
        "on_shutdown": shutdown,
        "handle_signals": True,
    }
    options.update(overrides)
    return Worker(**options)
