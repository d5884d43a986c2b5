"""Failed-authentication limiter: slows guessing of API keys and tokens, per client address.

A window in Redis, opened by a client's first failed attempt, counts its failures; once a client
has failed `limit` times in the window, every further attempt from it is refused with 429 until
the window ends (a window that starts with the first failure cannot be straddled to get twice the
budget, as clock-aligned windows can),
right keys included (otherwise a guesser would still learn when it hits). Successful attempts
cost nothing. Redis being away never locks anyone out: the limiter then lets attempts through.
"""

from __future__ import annotations

import asyncio
import logging
import math

from redis.asyncio import Redis
from starlette.requests import Request

from app.config import Settings
from app.core.errors import ProblemError

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

    def _key(self, client: str) -> str:
        return f"{self.namespace}:auth-failures:{client}"

    async def check(self, client: str) -> None:
        """Raise TooManyRequests if `client` has used up its failed attempts for this window."""
        try:
            failures = await asyncio.wait_for(self.redis.get(self._key(client)), REDIS_TIMEOUT_S)
            if failures is None or int(failures) < self.limit:
                return
            left_ms = await asyncio.wait_for(self.redis.pttl(self._key(client)), REDIS_TIMEOUT_S)
        except Exception as exc:  # fail open: Redis only slows guessing, it never gates access
            logger.warning("auth limiter unavailable: %r", exc)
            return
        retry_after = max(1, math.ceil(left_ms / 1000)) if left_ms > 0 else self.window_s
        raise TooManyRequests(
            f"too many failed authentication attempts; retry in {retry_after} s",
            retry_after=retry_after,
        )

    async def record_failure(self, client: str) -> None:
        key = self._key(client)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.set(key, 0, ex=self.window_s, nx=True)  # the first failure opens the window
                pipe.incr(key)
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
