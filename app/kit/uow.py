"""One transaction per request or job, committed in one place; jobs rung and events announced
only after the commit."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.events.publish import publish_deferred, take_deferred_events
from app.kit.queue import Doorbell, take_deferred


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession], doorbell: Doorbell
) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            take_deferred(session)  # jobs of a rolled-back transaction must never run
            take_deferred_events(session)  # nor is a rolled-back change ever announced
            await session.rollback()
            raise
        await session.commit()
    await doorbell.ring_deferred(session)
    await publish_deferred(session, doorbell.redis, doorbell.queue_name)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A part of a transaction that can fail alone: on error its changes are rolled back, and so
    are the jobs, events and figures it held for the commit."""
    saved = {key: copy.copy(value) for key, value in session.info.items()}
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        session.info.clear()
        session.info.update(saved)
        raise
