"""The stream of one connection on a real Redis subscription: it relays what is published,
keeps an idle connection alive, ends at its maximum age, and gives its subscription back however
it ends."""

from __future__ import annotations

import orjson
import pytest

from app.events import stream
from app.events.publish import channel
from tests.events.served import WAIT_S, listening, served, subscribers
from tests.support import Stack, until


async def test_stream_relays_what_is_published_and_closes_its_subscription(stack: Stack) -> None:
    redis = stack.resources.broker.redis
    name = channel(stack.settings.queue_name, 1)
    pubsub = redis.pubsub()
    await pubsub.subscribe(name)
    events = stream.event_stream(pubsub)

    assert (await anext(events)).encode() == b": connected\nretry: 3000\n\n"
    assert await redis.publish(name, b"not json") == 1  # dropped, with a warning
    data = orjson.dumps({"id": "1", "event": {"type": "dashboard.updated"}})
    assert await redis.publish(name, data) == 1  # the subscription above hears both
    assert (await anext(events)).encode() == (
        b'id: 1\nevent: dashboard.updated\ndata: {"type":"dashboard.updated"}\n\n'
    )
    # What the library does when the client leaves: the subscription is closed.
    await events.aclose()
    assert (await redis.pubsub_numsub(name))[0][1] == 0


async def test_an_idle_stream_is_kept_alive(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream, "KEEP_ALIVE_S", 0.05)
    shop = await stack.create_shop()
    async with served(stack) as client, listening(client, shop.auth) as events:
        assert [await events.comment() for _ in range(3)] == ["keep-alive"] * 3


async def test_a_stream_ends_at_its_maximum_age_and_unsubscribes(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stream, "MAX_AGE_S", 0.5)
    monkeypatch.setattr(stream, "KEEP_ALIVE_S", 60.0)
    shop = await stack.create_shop()
    async with served(stack) as client, listening(client, shop.auth) as events:
        assert await events.rest() == ["retry: 3000", ""]  # the rest of the first message

        async def released() -> bool:
            return await subscribers(stack, shop) == 0

        await until(released, WAIT_S, "the ended stream to unsubscribe")
