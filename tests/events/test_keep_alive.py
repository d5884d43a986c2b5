from __future__ import annotations

from typing import Any

import orjson

from app.events.stream import event_stream


class FakePubSub:
    """Hands out queued messages, then nothing; records that it was closed."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.messages = list(messages)
        self.closed = False

    async def get_message(self, **_: Any) -> dict[str, Any] | None:
        return self.messages.pop(0) if self.messages else None

    async def aclose(self) -> None:
        self.closed = True


async def test_stream_relays_keeps_alive_and_closes_when_client_leaves() -> None:
    data = orjson.dumps({"id": "1", "event": {"type": "dashboard.updated"}})
    pubsub = FakePubSub({"type": "message", "data": data})
    polls = 0

    async def is_disconnected() -> bool:
        nonlocal polls
        polls += 1
        return polls > 2

    chunks = [
        chunk
        async for chunk in event_stream(
            pubsub,  # type: ignore[arg-type]
            is_disconnected,
            keep_alive_s=0,
        )
    ]
    assert chunks[0] == "retry: 3000\n: connected\n\n"
    assert chunks[1].startswith("id: 1\nevent: dashboard.updated\n")
    assert chunks[2:] == [": keep-alive\n\n", ": keep-alive\n\n"]
    assert pubsub.closed
