"""The doorbell: jobs are queued only after the transaction that made their work commits.

PostgreSQL holds the work; Redis only makes it fast. A ring that fails (Redis down, slow) is
logged and dropped: the sweeper finds the stale row and rings again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from arq.connections import ArqRedis, RedisSettings
from redis.asyncio import ConnectionPool
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.context import current_request_id

logger = logging.getLogger(__name__)

_PENDING_KEY = "cashback.pending_jobs"
RING_TIMEOUT_S = 1.0


@dataclass(frozen=True, slots=True)
class Job:
    function: str
    args: tuple[object, ...]
    job_id: str


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def create_redis(url: str) -> ArqRedis:
    """An arq client that does not connect until first used, so a Redis outage never stops the
    API from starting or answering."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    return ArqRedis(connection_pool=pool)


def defer_job(session: AsyncSession, function: str, *args: object, job_id: str) -> None:
    """Hold a job until `session` commits; `ring_deferred` sends it (rollback discards it)."""
    session.info.setdefault(_PENDING_KEY, []).append(Job(function, args, job_id))


def take_deferred(session: AsyncSession) -> list[Job]:
    jobs: list[Job] = session.info.pop(_PENDING_KEY, [])
    return jobs


class Doorbell:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name

    async def ring(self, jobs: list[Job]) -> int:
        """Enqueue the jobs; returns how many were newly queued (0 when Redis is away)."""
        return len(await self.ring_each(jobs))

    async def ring_each(self, jobs: list[Job]) -> list[Job]:
        """Enqueue the jobs; returns those newly queued (none when Redis is away, nor those
        whose job is still queued or running)."""
        if not jobs:
            return []
        try:
            queued = await asyncio.wait_for(self._enqueue_all(jobs), RING_TIMEOUT_S)
        except Exception as exc:  # the sweeper re-drives whatever did not get through
            logger.warning("doorbell failed for %d job(s): %r", len(jobs), exc)
            return []
        if len(queued) < len(jobs):
            # arq refuses a job id it still holds: the job is queued (or its key lingers).
            logger.info(
                "doorbell: %d of %d job(s) were already queued", len(jobs) - len(queued), len(jobs)
            )
        return queued

    async def _enqueue_all(self, jobs: list[Job]) -> list[Job]:
        queued: list[Job] = []
        request_id = current_request_id()  # the job's logs carry the request that caused it
        for job in jobs:
            # arq keeps job ids in one global keyspace: scope them to this queue.
            result = await self.redis.enqueue_job(
                job.function,
                *job.args,
                correlation_id=request_id,  # observability.context.CORRELATION_KWARG
                _job_id=f"{self.queue_name}:{job.job_id}",
                _queue_name=self.queue_name,
            )
            if result is not None:
                queued.append(job)
        return queued

    async def ring_deferred(self, session: AsyncSession) -> int:
        return await self.ring(take_deferred(session))

    async def close(self) -> None:
        await self.redis.aclose()
