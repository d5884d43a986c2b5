"""Reliability fixtures: a Redis server of the test's own, and the real app on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from app.config import Settings
from app.core.resources import Resources
from app.main import create_app
from tests.reliability.servers import RedisProcess
from tests.support import Stack


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def redis_stack(settings: Settings, own_redis: RedisProcess) -> AsyncIterator[Stack]:
    """The real app and workers with Redis on `own_redis`."""
    settings = settings.model_copy(update={"redis_url": own_redis.url})
    resources = Resources.open(settings)
    transport = httpx.ASGITransport(app=create_app(settings, resources), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Stack(settings, resources, client)
    finally:
        await resources.close()
