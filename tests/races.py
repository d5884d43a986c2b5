"""Races that really race: each stored event handled in a transaction of its own, all of them
open at once (on one barrier) before any touches its order, as worker processes sharing a
flood would. The order's row lock and the business keys are what must keep credit exact."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from app.core.uow import unit_of_work
from app.inbox import drain
from app.inbox.models import EventStatus, WebhookEvent
from tests.support import Stack

# Each racer holds a connection at the barrier: stay below the pool (10, no overflow).
MAX_RACERS = 8


async def race_events(stack: Stack, event_ids: list[int]) -> list[EventStatus | None]:
    """Handle `event_ids` at once, one transaction each; returns each one's outcome."""
    assert 2 <= len(event_ids) <= MAX_RACERS
    barrier = asyncio.Barrier(len(event_ids))
    res = stack.resources

    async def racer(event_id: int) -> EventStatus | None:
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            event = await session.scalar(
                select(WebhookEvent)
                .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.received)
                .with_for_update()
            )
            assert event is not None, f"event {event_id} is not waiting to be handled"
            await barrier.wait()  # every transaction is open; none has touched its order yet
            return await drain.handle_claimed(session, event)

    return list(await asyncio.gather(*(racer(i) for i in event_ids)))


async def stored_event_ids(stack: Stack, topic: str) -> list[int]:
    async with stack.resources.sessionmaker() as session:
        return list(
            await session.scalars(
                select(WebhookEvent.id)
                .where(WebhookEvent.topic == topic, WebhookEvent.status == EventStatus.received)
                .order_by(WebhookEvent.id)
            )
        )
