"""A client of the app on a real socket, and a reader of the SSE stream as a client sees it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.events.publish import channel, defer_event, publish_deferred
from tests.support import ShopHandle, Stack
from tests.support import served as on_a_socket

WAIT_S = 10.0


@asynccontextmanager
async def served(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        on_a_socket(stack.settings, stack.resources) as url,
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(WAIT_S)) as client,
    ):
        yield client


class EventReader:
    """Reads SSE messages and comments from an open streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, str]:
        """The next message with an `event:` (comments skipped)."""
        fields: dict[str, str] = {}
        async with asyncio.timeout(WAIT_S):
            async for line in self._lines:
                if line == "":
                    if "event" in fields:
                        return fields
                    fields = {}
                elif not line.startswith(":"):
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        raise AssertionError("stream ended")

    async def comment(self) -> str:
        """The next comment line, without its colon."""
        async with asyncio.timeout(WAIT_S):
            async for line in self._lines:
                if line.startswith(":"):
                    return line.removeprefix(":").removeprefix(" ")
        raise AssertionError("stream ended")

    async def rest(self) -> list[str]:
        """Every line until the server ends the stream."""
        async with asyncio.timeout(WAIT_S):
            return [line async for line in self._lines]


@asynccontextmanager
async def listening(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> AsyncIterator[EventReader]:
    async with client.stream("GET", "/v1/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        assert await reader.comment() == "connected"
        yield reader


async def publish(stack: Stack, shop: ShopHandle, event: dict[str, Any]) -> None:
    """A committed unit of work, with the hook `unit_of_work` runs after the commit."""
    async with stack.resources.sessionmaker() as session:
        defer_event(session, shop.id, event)
        await session.commit()
    await publish_deferred(session, stack.resources.broker.redis, stack.settings.queue_name)


async def subscribers(stack: Stack, shop: ShopHandle) -> int:
    """How many subscriptions listen on the shop's channel."""
    name = channel(stack.settings.queue_name, shop.id)
    ((_, count),) = await stack.resources.broker.redis.pubsub_numsub(name)
    return int(count)
