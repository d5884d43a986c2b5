"""Notification and alert jobs: send one outbox message, check review deadlines, re-drive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from arq import cron
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Job
from app.core.jobs import resources
from app.core.uow import unit_of_work
from app.notifications import delivery, service
from app.notifications import retention as retention_module

SWEEP_BATCH = 1000


async def send_outbox_message(ctx: dict[str, Any], message_id: int) -> str | None:
    """Claim, send with no transaction open, record. A crash between sending and recording
    leaves the claim to expire and the message is sent again, with the same webhook-id."""
    res = resources(ctx)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        claim = await service.claim(session, message_id)
    if claim is None:
        return None
    result = await delivery.post(
        res.http,
        claim.endpoint.url,
        secret=claim.endpoint.secret,
        webhook_id=claim.webhook_id,
        body=claim.body,
    )
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        status = await service.record(session, claim, result)
    return status.value if status else None


async def check_review_deadlines(ctx: dict[str, Any]) -> int:
    res = resources(ctx)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        return await service.alert_overdue_reviews(session)


async def call_review_queues(ctx: dict[str, Any], now: datetime | None = None) -> int:
    """The daily review call of every shop whose slot has come (`now`: for tests)."""
    res = resources(ctx)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        return await service.call_due_reviews(
            session, now or datetime.now(UTC), public_url=res.settings.public_url
        )


async def prune_outbox(ctx: dict[str, Any]) -> int:
    res = resources(ctx)
    retention = timedelta(days=res.settings.outbox_retention_days)
    return await retention_module.prune_outbox(res.sessionmaker, retention, datetime.now(UTC))


FUNCTIONS: list[WorkerCoroutine] = [send_outbox_message]
CRON_JOBS: list[CronJob] = [
    cron(
        check_review_deadlines,
        minute=set(range(0, 60, 5)),
        second=30,  # off the sweeper's minute mark
        unique=True,
        timeout=60,
    ),
    # Every minute: a review call goes out within a minute of its time.
    cron(call_review_queues, second=15, unique=True, timeout=60),
    cron(prune_outbox, minute=23, second=45, unique=True, timeout=300),  # hourly, off the marks
]


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    """Sends that are due: retries whose backoff is over, and messages whose job was lost.
    Due-ness is the message's own `next_attempt_at` (a claim pushes it past its lease), so
    `cutoff` is not needed; a message whose job is still queued keeps its job id."""
    return [
        Job(service.SEND_JOB, (message_id,), service.outbox_job_id(message_id))
        for message_id in await service.due_messages(session, SWEEP_BATCH)
    ]
