from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import orjson
import pytest

from app.core.broker import create_redis
from app.core.uow import unit_of_work
from app.events.publish import (
    channel,
    defer_event,
    order_status_changed,
    publish_deferred,
    take_deferred_events,
)
from app.events.stream import event_from_message
from tests.support import NO_REDIS, Stack

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_order_status_changed_payload() -> None:
    assert order_status_changed(7, "1001", "pending", "processed", AT) == {
        "type": "order.status_changed",
        "order_id": "7",
        "external_id": "1001",
        "from_status": "pending",
        "to_status": "processed",
        "at": "2026-01-02T03:04:05+00:00",
    }


def test_message_carries_id_type_and_json_data() -> None:
    message = orjson.dumps({"id": "abc", "event": {"type": "dashboard.updated", "n": 1}})
    event = event_from_message(message)
    assert event is not None
    assert event.encode() == (
        b'id: abc\nevent: dashboard.updated\ndata: {"type":"dashboard.updated","n":1}\n\n'
    )
    assert event_from_message(b"not json") is None


async def test_events_wait_for_publish_and_publish_once(stack: Stack) -> None:
    redis = stack.resources.broker.redis
    prefix = stack.settings.queue_name
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel(prefix, 1))
    try:
        async with stack.resources.sessionmaker() as session:
            defer_event(session, 1, {"type": "dashboard.updated"})
            await session.commit()
            await publish_deferred(session, redis, prefix)
            await publish_deferred(session, redis, prefix)  # nothing left to send
        message = None
        async with asyncio.timeout(5):
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert orjson.loads(message["data"])["event"] == {"type": "dashboard.updated"}
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_rolled_back_events_are_discarded(stack: Stack) -> None:
    async with stack.resources.sessionmaker() as session:
        defer_event(session, 1, {"type": "dashboard.updated"})
        await session.rollback()
        assert take_deferred_events(session) == [(1, {"type": "dashboard.updated"})]
        assert take_deferred_events(session) == []


async def test_a_unit_of_work_that_fails_announces_nothing(stack: Stack) -> None:
    """Through the unit of work's own rollback branch, on a real subscription: the failed
    transaction's event never arrives, the next committed one does."""
    res = stack.resources
    pubsub = res.broker.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel(stack.settings.queue_name, 1))
    try:
        with pytest.raises(RuntimeError):
            async with unit_of_work(res.sessionmaker, res.broker) as session:
                defer_event(session, 1, {"type": "dashboard.updated", "n": "rolled back"})
                raise RuntimeError("the change failed")
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            defer_event(session, 1, {"type": "dashboard.updated", "n": "committed"})
        message = None
        async with asyncio.timeout(5):
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
        assert orjson.loads(message["data"])["event"]["n"] == "committed"  # the first to arrive
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2) is None
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_event_needs_a_type(stack: Stack) -> None:
    async with stack.resources.sessionmaker() as session:
        with pytest.raises(ValueError, match="type"):
            defer_event(session, 1, {"order_id": "1"})


async def test_publish_failure_is_logged_not_raised(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable = create_redis(NO_REDIS)
    try:
        async with stack.resources.sessionmaker() as session:
            defer_event(session, 1, {"type": "dashboard.updated"})
            with caplog.at_level(logging.WARNING, logger="app.events.publish"):
                await publish_deferred(session, unreachable, stack.settings.queue_name)
    finally:
        await unreachable.aclose()
    assert "publishing 1 event(s) failed" in caplog.text
