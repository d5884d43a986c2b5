"""The long-lived resources of a process (API or worker): engines, sessions, broker.

`sessionmaker` is the primary's: every write, and every read that must see a write. The reads
that tolerate lag take `read_sessionmaker`: the replica's when `CASHBACK_DATABASE_READ_URL` is
set, else the primary's. Its transactions are READ ONLY either way (no extra round trip: asyncpg
says so in its BEGIN), so a read that writes fails in every test, not first on a replica.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.core.broker import Broker, create_redis
from app.core.crypto import SecretBox
from app.core.db import create_engine, create_sessionmaker


def create_http_client(timeout_s: float) -> httpx.AsyncClient:
    """The one client for calls to other systems: explicit timeouts, no redirects followed."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=50, max_keepalive_connections=20),
    )


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    read_sessionmaker: async_sessionmaker[AsyncSession]
    read_engine: AsyncEngine | None  # the replica's, when there is one
    broker: Broker
    http: httpx.AsyncClient
    secrets: SecretBox

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        if not (settings.database_url and settings.redis_url):
            raise RuntimeError("database and Redis URLs must be resolved (see app.embedded)")

        def engine_for(url: str) -> AsyncEngine:
            return create_engine(
                url, pool_size=settings.db_pool_size, pooler=settings.database_pooler
            )

        engine = engine_for(settings.database_url)
        replica = settings.database_read_url
        read_engine = engine_for(replica) if replica else None
        reads = (read_engine or engine).execution_options(postgresql_readonly=True)
        broker = Broker(create_redis(settings.redis_url), settings.queue_name)
        return cls(
            settings,
            engine,
            create_sessionmaker(engine),
            create_sessionmaker(reads),
            read_engine,
            broker,
            create_http_client(settings.http_timeout_s),
            SecretBox(settings.secret_key.get_secret_value()),
        )

    async def close(self) -> None:
        await self.http.aclose()
        await self.broker.close()
        await self.engine.dispose()
        if self.read_engine is not None:
            await self.read_engine.dispose()
