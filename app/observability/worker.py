"""The worker's side: job metrics and the correlation id around every task, its own
`/metrics` port, and the health check an orchestrator runs (`cashback worker --check`)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from typing import Any
from wsgiref.simple_server import WSGIServer

from arq import Retry
from arq.constants import health_check_key_suffix
from arq.worker import Function, RetryJob
from prometheus_client import start_http_server

from app.config import Settings
from app.core.broker import create_redis
from app.core.context import CORRELATION_KWARG, bound
from app.observability.metrics import WorkerMetrics

logger = logging.getLogger(__name__)


def instrument(function: Function, metrics: WorkerMetrics) -> Function:
    """`function` with each try timed, counted by outcome, and logged under its job's ids."""
    coroutine = function.coroutine
    name = function.name

    @functools.wraps(coroutine)
    async def run(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        request_id = kwargs.pop(CORRELATION_KWARG, None)
        fields: dict[str, Any] = {"job_id": ctx.get("job_id"), "job": name}
        if request_id is not None:
            fields["request_id"] = request_id
        started = time.perf_counter()
        outcome = "failed"
        with bound(**fields):
            try:
                result = await coroutine(ctx, *args, **kwargs)
            except (Retry, RetryJob):
                outcome = "retried"
                raise
            except asyncio.CancelledError:
                outcome = "cancelled"  # a timeout or shutdown: arq runs it again
                raise
            else:
                outcome = "ok"
                return result
            finally:
                metrics.record_job(name, outcome, time.perf_counter() - started)

    return dataclasses.replace(function, coroutine=run)


def serve_metrics(settings: Settings, metrics: WorkerMetrics) -> WSGIServer | None:
    """Expose the worker's metrics on their own port (a thread); port 0 turns it off."""
    if settings.worker_metrics_port == 0:
        return None
    server, _ = start_http_server(
        settings.worker_metrics_port, settings.worker_metrics_host, registry=metrics.registry
    )
    logger.info(
        "worker metrics on http://%s:%d/metrics",
        settings.worker_metrics_host,
        settings.worker_metrics_port,
    )
    return server


def health_check_key(queue_name: str) -> str:
    return queue_name + health_check_key_suffix


async def worker_is_healthy(settings: Settings) -> bool:
    """True while a worker's health record is in Redis: arq rewrites it every
    `worker_health_interval` seconds and it expires a second later."""
    assert settings.redis_url
    redis = create_redis(settings.redis_url)
    try:
        return bool(await redis.exists(health_check_key(settings.queue_name)))
    except Exception as exc:
        logger.warning("worker health check could not read Redis: %r", exc)
        return False
    finally:
        await redis.aclose()
