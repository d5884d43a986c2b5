"""Failed-authentication limiter: slows guessing of API keys and tokens, per client address.

A fixed window in Redis counts each client's failed attempts; once a client has failed `limit`
times in the window, every further attempt from it is refused with 429 until the window ends,
right keys included (otherwise a guesser would still learn when it hits). Successful attempts
cost nothing. Redis being away never locks anyone out: the limiter then lets attempts through.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis
from starlette.requests import Request

from app.config import Settings
from app.kit.errors import ProblemError

logger = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 0.5


class TooManyRequests(ProblemError):
    status, code, title = 429, "too_many_requests", "Too many failed attempts"


def client_address(request: Request, settings: Settings) -> str:
    """The caller's address; `X-Forwarded-For` counts only behind a proxy we were told to trust
    (its last entry is the one that proxy added, the rest the client can forge)."""
    if settings.trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.client.host if request.client else "unknown"


class FailedAuthLimiter:
    def __init__(self, redis: Redis, namespace: str, *, limit: int, window_s: int) -> None:
        self.redis = redis
        self.namespace = namespace
        self.limit = limit
        self.window_s = window_s

    def _key(self, client: str, now: float) -> tuple[str, int]:
        window = int(now // self.window_s)
        retry_after = max(1, (window + 1) * self.window_s - int(now))
        return f"{self.namespace}:auth-failures:{client}:{window}", retry_after

    async def check(self, client: str) -> None:
        """Raise TooManyRequests if `client` has used up its failed attempts for this window."""
        key, retry_after = self._key(client, time.time())
        try:
            failures = await asyncio.wait_for(self.redis.get(key), REDIS_TIMEOUT_S)
        except Exception as exc:  # fail open: Redis only slows guessing, it never gates access
            logger.warning("auth limiter unavailable: %r", exc)
            return
        if failures is not None and int(failures) >= self.limit:
            raise TooManyRequests(
                f"too many failed authentication attempts; retry in {retry_after} s",
                retry_after=retry_after,
            )

    async def record_failure(self, client: str) -> None:
        key, _ = self._key(client, time.time())
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_s + 1)
                await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_S)
        except Exception as exc:
            logger.warning("auth limiter unavailable: %r", exc)


def failed_auth_limiter(redis: Redis, settings: Settings) -> FailedAuthLimiter:
    return FailedAuthLimiter(
        redis,
        settings.queue_name,
        limit=settings.auth_failure_limit,
        window_s=settings.auth_failure_window_s,
    )
