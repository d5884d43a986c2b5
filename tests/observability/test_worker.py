"""The worker's side: job metrics after a real run, the sweeper's counts, the correlation id
a job carries, and `cashback worker --check`."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import redis
from arq import Retry
from arq.constants import job_key_prefix
from arq.jobs import Job as ArqJob
from arq.worker import func
from sqlalchemy import update
from typer.testing import CliRunner

from app import cli
from app.config import Settings
from app.core.context import CORRELATION_KWARG, bound_fields
from app.inbox.models import WebhookEvent
from app.observability.metrics import WorkerMetrics
from app.observability.worker import (
    health_check_key,
    instrument,
    serve_metrics,
    worker_is_healthy,
)
from tests.payloads import new_order_id, paid_order
from tests.support import Stack
from workers.sweeper import sweep
from workers.worker import build_worker


async def run_worker(stack: Stack, metrics: WorkerMetrics) -> None:
    worker = build_worker(
        stack.settings, metrics=metrics, burst=True, handle_signals=False, cron_jobs=[]
    )
    try:
        await worker.main()
    finally:
        await worker.close()


async def test_a_real_worker_run_counts_jobs_and_their_duration(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.deliver(shop, paid_order())).status_code == 200
    metrics = WorkerMetrics()

    await run_worker(stack, metrics)

    assert await stack.credit_count(shop) == 1
    runs = metrics.registry.get_sample_value(
        "cashback_jobs_total", {"function": "drain_webhook_events", "outcome": "ok"}
    )
    assert runs == 1
    timed = metrics.registry.get_sample_value(
        "cashback_job_duration_seconds_count", {"function": "drain_webhook_events"}
    )
    assert timed == 1


async def test_a_retried_try_is_counted_as_retried() -> None:
    async def flaky_task(ctx: dict[str, Any]) -> None:
        raise Retry(defer=1)

    metrics = WorkerMetrics()
    wrapped = instrument(func(flaky_task, max_tries=2), metrics)
    with pytest.raises(Retry):
        await wrapped.coroutine({"job_id": "j1"})
    assert wrapped.name.endswith("flaky_task")
    assert (
        metrics.registry.get_sample_value(
            "cashback_jobs_total", {"function": wrapped.name, "outcome": "retried"}
        )
        == 1
    )


async def test_a_job_runs_under_the_request_id_that_queued_it() -> None:
    seen: dict[str, Any] = {}

    async def award_task(ctx: dict[str, Any], order_id: int) -> int:
        seen.update(bound_fields())
        return order_id

    wrapped = instrument(func(award_task), WorkerMetrics())
    result = await wrapped.coroutine({"job_id": "q:order:7"}, 7, **{CORRELATION_KWARG: "req-abc"})
    assert result == 7
    assert seen == {"job_id": "q:order:7", "job": wrapped.name, "request_id": "req-abc"}
    assert bound_fields() == {}


async def test_the_sweeper_counts_its_redrives(stack: Stack) -> None:
    """On stale work, not an empty database (where every count is 0 either way)."""
    shop = await stack.create_shop()
    for _ in range(2):  # stored, never handled (their jobs were lost), and a minute old
        await stack.deliver(shop, paid_order(id=new_order_id()))
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(WebhookEvent).values(received_at=datetime.now(UTC) - timedelta(minutes=5))
        )
        await session.commit()
    await stack.resources.broker.redis.delete(stack.settings.queue_name)
    metrics = WorkerMetrics()
    counts = await sweep({"resources": stack.resources, "metrics": metrics})
    assert counts["events"] == 2
    for kind, count in counts.items():
        assert metrics.registry.get_sample_value(
            "cashback_sweeper_redrives_total", {"kind": kind}
        ) == float(count)


async def test_health_follows_a_running_worker(stack: Stack) -> None:
    assert not await worker_is_healthy(stack.settings)
    worker = build_worker(stack.settings, burst=True, handle_signals=False, cron_jobs=[])
    try:
        await worker.main()
        assert await worker_is_healthy(stack.settings)
    finally:
        await worker.close()
    # A worker that stops cleanly takes its health record with it.
    assert not await worker_is_healthy(stack.settings)


def check_exit_code(settings: Settings) -> tuple[int, str]:
    assert settings.redis_url and settings.database_url
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASHBACK_")} | {
        "CASHBACK_REDIS_URL": settings.redis_url,
        "CASHBACK_DATABASE_URL": settings.database_url,
        "CASHBACK_QUEUE_NAME": settings.queue_name,
    }
    result = subprocess.run(
        [sys.executable, "-m", "app", "worker", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stderr


@pytest.mark.slow
async def test_worker_check_exits_by_the_health_record(stack: Stack) -> None:
    redis = stack.resources.broker.redis
    key = health_check_key(stack.settings.queue_name)
    code, stderr = await asyncio.to_thread(check_exit_code, stack.settings)
    assert code == 1, stderr
    await redis.psetex(key, 60_000, b"j_complete=0 j_failed=0 j_retried=0 j_ongoing=0 queued=0")
    try:
        code, stderr = await asyncio.to_thread(check_exit_code, stack.settings)
        assert code == 0, stderr
    finally:
        await redis.delete(key)


def test_worker_check_in_process(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    monkeypatch.setattr(cli, "_configure_logging", lambda _: None)
    runner = CliRunner()
    assert runner.invoke(cli.cli, ["worker", "--check"]).exit_code == 1
    assert settings.redis_url
    client = redis.Redis.from_url(settings.redis_url)
    key = health_check_key(settings.queue_name)
    client.psetex(key, 60_000, b"queued=0")
    try:
        assert runner.invoke(cli.cli, ["worker", "--check"]).exit_code == 0
    finally:
        client.delete(key)
        client.close()


async def test_the_worker_serves_its_metrics_on_its_own_port(settings: Settings) -> None:
    disabled = settings.model_copy(update={"worker_metrics_port": 0})
    assert serve_metrics(disabled, WorkerMetrics()) is None
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics = WorkerMetrics()
    metrics.record_job("award_due_order", "ok", 0.2)
    server = serve_metrics(settings.model_copy(update={"worker_metrics_port": port}), metrics)
    assert server is not None
    try:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert 'cashback_jobs_total{function="award_due_order",outcome="ok"} 1.0' in response.text
    finally:
        server.shutdown()
        server.server_close()


async def test_a_real_worker_accepts_a_job_that_carries_a_request_id(stack: Stack) -> None:
    shop = await stack.create_shop()
    assert (await stack.deliver(shop, paid_order())).status_code == 200
    redis = stack.resources.broker.redis
    queue = stack.settings.queue_name
    [job_id] = [raw.decode() for raw in await redis.zrange(queue, 0, -1)]
    info = await ArqJob(job_id, redis, _queue_name=queue).info()
    assert info is not None
    # Queue it again as the broker would with the request's id attached.
    await redis.delete(queue, job_key_prefix + job_id)
    queued = await redis.enqueue_job(
        info.function,
        *info.args,
        _job_id=job_id,
        _queue_name=queue,
        correlation_id="req-carried",  # CORRELATION_KWARG
    )
    assert queued is not None
    metrics = WorkerMetrics()

    await run_worker(stack, metrics)

    assert await stack.credit_count(shop) == 1
    ok = metrics.registry.get_sample_value(
        "cashback_jobs_total", {"function": info.function, "outcome": "ok"}
    )
    assert ok == 1
