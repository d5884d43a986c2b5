"""The broker: the service's Redis, as the job queue (arq's encoding) and as the client the
rate limiter and the live event channels use.

PostgreSQL holds the work; Redis only makes it fast. Jobs are queued only after the transaction
that made their work commits (`app.core.uow.defer_job`), all of a transaction's jobs in one
round trip. An enqueue that fails (Redis down, slow) is logged and dropped: the sweeper finds
the stale row and queues it again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from arq.connections import ArqRedis, RedisSettings
from arq.constants import job_key_prefix, result_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
from redis.asyncio import ConnectionPool

from app.core.context import CORRELATION_KWARG, current_request_id

logger = logging.getLogger(__name__)

RING_TIMEOUT_S = 1.0

# arq's enqueue_job, for many jobs in one round trip: a job is queued unless its job or result
# key exists (arq's rule for unique job ids). KEYS[1]: the queue; ARGV: the job-key prefix, the
# result-key prefix, then (job id, serialized job, expiry ms, score) per job. Returns 1 (queued)
# or 0 (already held) per job, in order.
_ENQUEUE_MANY = """
local queued = {}
for i = 3, #ARGV, 4 do
  local id = ARGV[i]
  if redis.call('EXISTS', ARGV[1] .. id, ARGV[2] .. id) == 0 then
    redis.call('PSETEX', ARGV[1] .. id, ARGV[i + 2], ARGV[i + 1])
    redis.call('ZADD', KEYS[1], ARGV[i + 3], id)
    queued[#queued + 1] = 1
  else
    queued[#queued + 1] = 0
  end
end
return queued
"""


@dataclass(frozen=True, slots=True)
class Job:
    function: str
    args: tuple[object, ...]
    job_id: str
    correlation_id: str | None = None  # the request that caused the job (for its logs)


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


def create_redis(url: str) -> ArqRedis:
    """An arq client that does not connect until first used, so a Redis outage never stops the
    API from starting or answering."""
    pool = ConnectionPool.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    return ArqRedis(connection_pool=pool)


class Broker:
    def __init__(self, redis: ArqRedis, queue_name: str) -> None:
        self.redis = redis
        self.queue_name = queue_name
        self._enqueue_many = redis.register_script(_ENQUEUE_MANY)

    async def enqueue(self, jobs: list[Job]) -> int:
        """Enqueue the jobs; returns how many were newly queued (0 when Redis is away)."""
        return len(await self.enqueue_each(jobs))

    async def enqueue_each(self, jobs: list[Job]) -> list[Job]:
        """Enqueue the jobs; returns those newly queued (none when Redis is away, nor those
        whose job is still queued or running)."""
        if not jobs:
            return []
        try:
            queued = await asyncio.wait_for(self._enqueue_all(jobs), RING_TIMEOUT_S)
        except Exception as exc:  # the sweeper re-drives whatever did not get through
            logger.warning("enqueueing %d job(s) failed: %r", len(jobs), exc)
            return []
        if len(queued) < len(jobs):
            # arq refuses a job id it still holds: the job is queued (or its key lingers).
            logger.info(
                "broker: %d of %d job(s) were already queued", len(jobs) - len(queued), len(jobs)
            )
        return queued

    async def _enqueue_all(self, jobs: list[Job]) -> list[Job]:
        """All the jobs in one round trip (EVALSHA), with arq's own job encoding; returns those
        newly queued."""
        now = timestamp_ms()
        expires = self.redis.expires_extra_ms
        request_id = current_request_id()  # the job's logs carry the request that caused it
        argv: list[bytes | str | int] = [job_key_prefix, result_key_prefix]
        for job in jobs:
            kwargs = {CORRELATION_KWARG: job.correlation_id or request_id}
            payload = serialize_job(
                job.function, job.args, kwargs, None, now, serializer=self.redis.job_serializer
            )
            # arq keeps job ids in one global keyspace: scope them to this queue.
            argv += [f"{self.queue_name}:{job.job_id}", payload, expires, now]
        flags = await self._enqueue_many(keys=[self.queue_name], args=argv)
        return [job for job, flag in zip(jobs, flags, strict=True) if int(flag)]

    async def close(self) -> None:
        await self.redis.aclose()
