"""The long-lived resources of a process (API or worker): engine, sessions, doorbell."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.config import Settings
from app.kit.db import create_engine, create_sessionmaker
from app.kit.queue import Doorbell, create_redis


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    doorbell: Doorbell

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        if not (settings.database_url and settings.redis_url):
            raise RuntimeError("database and Redis URLs must be resolved (see app.embedded)")
        engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
        doorbell = Doorbell(create_redis(settings.redis_url), settings.queue_name)
        return cls(settings, engine, create_sessionmaker(engine), doorbell)

    async def close(self) -> None:
        await self.doorbell.close()
        await self.engine.dispose()
