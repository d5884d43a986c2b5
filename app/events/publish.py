"""Publishing: events are held until the transaction that caused them commits, then sent to
the shop's Redis pub/sub channel. A rolled-back change is never announced; a failed publish is
logged and dropped (the frontend's next list fetch shows the truth)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Broker
from app.core.uow import Part, uow_of

logger = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 1.0

ORDER_STATUS_CHANGED = "order.status_changed"

Event = dict[str, Any]


def channel(prefix: str, shop_id: int) -> str:
    """The shop's channel; `prefix` is the queue name, so test runs and deployments never mix."""
    return f"{prefix}:events:{shop_id}"


def order_status_changed(
    order_id: int, external_id: str, from_status: str, to_status: str, at: datetime
) -> Event:
    return {
        "type": ORDER_STATUS_CHANGED,
        "order_id": str(order_id),
        "external_id": external_id,
        "from_status": str(from_status),
        "to_status": str(to_status),
        "at": at.isoformat(),
    }


@dataclass
class LiveEvents(Part):
    """Events to publish once the transaction commits, (shop id, event) in order."""

    held: list[tuple[int, Event]] = field(default_factory=list)

    async def send(self, broker: Broker) -> None:
        await publish(self.held, broker.redis, broker.queue_name)


def defer_event(session: AsyncSession, shop_id: int, event: Event) -> None:
    """Hold `event` (a dict with a `type`) until `session` commits; rollback discards it."""
    if not isinstance(event.get("type"), str):
        raise ValueError("an event needs a string `type`, e.g. 'order.status_changed'")
    uow_of(session).open(LiveEvents).held.append((shop_id, event))


DASHBOARD_UPDATED: Event = {"type": "dashboard.updated"}


def defer_dashboard_update(session: AsyncSession, shop_id: int) -> None:
    """Tell the shop's frontend its dashboard figures changed: once per transaction, however
    many orders it touched (the frontend refetches GET /v1/metrics/dashboard)."""
    held = uow_of(session).open(LiveEvents).held
    if (shop_id, DASHBOARD_UPDATED) not in held:
        held.append((shop_id, DASHBOARD_UPDATED))


def take_deferred_events(session: AsyncSession) -> list[tuple[int, Event]]:
    """The events `session` holds, no longer held."""
    events = uow_of(session).take(LiveEvents)
    return [] if events is None else events.held


def envelope(event: Event) -> bytes:
    """What goes on the channel: the event plus an id the stream sends as SSE `id:`."""
    return orjson.dumps({"id": uuid.uuid4().hex, "event": event})


async def publish_deferred(session: AsyncSession, redis: Redis, channel_prefix: str) -> None:
    """Publish the events held by `session`; call only after its commit. Never raises."""
    await publish(take_deferred_events(session), redis, channel_prefix)


async def publish(pending: list[tuple[int, Event]], redis: Redis, channel_prefix: str) -> None:
    """Publish (shop id, event) pairs of a committed transaction. Never raises."""
    if not pending:
        return
    try:
        await asyncio.wait_for(_publish_all(redis, channel_prefix, pending), PUBLISH_TIMEOUT_S)
    except Exception as exc:  # live updates are a convenience: never fail the committed work
        logger.warning("publishing %d event(s) failed: %r", len(pending), exc)


async def _publish_all(redis: Redis, channel_prefix: str, pending: list[tuple[int, Event]]) -> None:
    async with redis.pipeline(transaction=False) as pipe:
        for shop_id, event in pending:
            pipe.publish(channel(channel_prefix, shop_id), envelope(event))
        await pipe.execute()
