"""The stream of one connection on a real Redis subscription: it relays what is published,
keeps an idle connection alive, and gives its connection back when the client leaves."""

from __future__ import annotations

import orjson

from app.events.publish import channel
from app.events.stream import event_stream
from tests.support import Stack


async def test_stream_relays_keeps_alive_and_closes_when_client_leaves(stack: Stack) -> None:
    redis = stack.resources.broker.redis
    name = channel(stack.settings.queue_name, 1)
    pubsub = redis.pubsub()
    await pubsub.subscribe(name)
    data = orjson.dumps({"id": "1", "event": {"type": "dashboard.updated"}})
    assert await redis.publish(name, data) == 1  # the subscription above hears it
    polls = 0

    async def is_disconnected() -> bool:  # the client leaves after a few idle polls
        nonlocal polls
        polls += 1
        return polls > 3

    chunks = [chunk async for chunk in event_stream(pubsub, is_disconnected, keep_alive_s=0)]

    assert chunks[0] == "retry: 3000\n: connected\n\n"
    frames = [c for c in chunks[1:] if not c.startswith(": ")]
    assert frames == ['id: 1\nevent: dashboard.updated\ndata: {"type":"dashboard.updated"}\n\n']
    keep_alives = [c for c in chunks[1:] if c.startswith(": ")]
    assert keep_alives == [": keep-alive\n\n"] * 3  # one per idle poll before leaving
    # The subscription was closed: nobody listens on the shop's channel any more.
    assert (await redis.pubsub_numsub(name))[0][1] == 0
