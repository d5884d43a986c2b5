from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from app.events.publish import channel, defer_event, order_status_changed, publish_deferred
from app.main import create_app
from tests.payloads import paid_order
from tests.support import ShopHandle, Stack

WAIT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def served(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a real socket: httpx's ASGI transport buffers whole responses."""
    port = free_port()
    config = uvicorn.Config(
        create_app(stack.settings, stack.resources),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT_S):
            while True:
                if server.started:
                    break
                await asyncio.sleep(0.02)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=httpx.Timeout(WAIT_S)
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await task


class EventReader:
    """Reads SSE messages (comments skipped) from an open streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, str]:
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

    async def connected(self) -> None:
        async with asyncio.timeout(WAIT_S):
            async for line in self._lines:
                if line == ": connected":
                    return
        raise AssertionError("stream ended")


@asynccontextmanager
async def listening(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> AsyncIterator[EventReader]:
    async with client.stream("GET", "/v1/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = EventReader(response)
        await reader.connected()
        yield reader


async def publish(stack: Stack, shop: ShopHandle, event: dict[str, Any]) -> None:
    """A committed unit of work, with the hook `unit_of_work` runs after the commit."""
    async with stack.resources.sessionmaker() as session:
        defer_event(session, shop.id, event)
        await session.commit()
    await publish_deferred(session, stack.resources.broker.redis, stack.settings.queue_name)


async def test_a_shop_receives_its_own_order_status_changes_only(stack: Stack) -> None:
    mine, theirs = await stack.create_shop(), await stack.create_shop()
    changed = order_status_changed(
        42, "1001", "pending", "processed", datetime(2026, 1, 2, tzinfo=UTC)
    )
    async with (
        served(stack) as client,
        listening(client, mine.auth) as my_events,
        listening(client, theirs.auth) as their_events,
    ):
        await publish(stack, mine, changed)
        await publish(stack, theirs, {"type": "dashboard.updated"})

        received = await my_events.next()
        assert received["event"] == "order.status_changed"
        assert orjson.loads(received["data"]) == changed
        assert received["id"]
        # Their first event is their own: my order's change never reached them.
        assert (await their_events.next())["event"] == "dashboard.updated"


async def test_reconnecting_client_is_told_to_resync(stack: Stack) -> None:
    shop = await stack.create_shop()
    headers = shop.auth | {"Last-Event-ID": "abc"}
    async with served(stack) as client, listening(client, headers) as events:
        assert (await events.next())["event"] == "stream.resync"


@pytest.mark.parametrize("auth", [{}, {"Authorization": "Bearer cbk_nope"}])
async def test_events_need_an_api_key(stack: Stack, auth: dict[str, str]) -> None:
    response = await stack.client.get("/v1/events", headers=auth)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"


async def test_leaving_client_releases_its_subscription(stack: Stack) -> None:
    shop = await stack.create_shop()
    name = channel(stack.settings.queue_name, shop.id)
    redis = stack.resources.broker.redis
    async with served(stack) as client:
        async with listening(client, shop.auth):
            assert await redis.pubsub_numsub(name) == [(name.encode(), 1)]
        async with asyncio.timeout(WAIT_S):
            while True:
                if await redis.pubsub_numsub(name) == [(name.encode(), 0)]:
                    break
                await asyncio.sleep(0.1)


async def test_a_paid_webhook_reaches_a_connected_frontend_through_the_worker(
    stack: Stack,
) -> None:
    """The wiring end to end: the worker's commit announces each status change."""
    shop = await stack.create_shop()
    async with served(stack) as client, listening(client, shop.auth) as events:
        body = paid_order()
        response = await stack.deliver(shop, body)
        assert response.status_code == 200
        await stack.run_worker()
        first = orjson.loads((await events.next())["data"])
        second = orjson.loads((await events.next())["data"])
    by_type = {first["type"]: first, second["type"]: second}
    assert by_type["dashboard.updated"] == {"type": "dashboard.updated"}  # once, for the commit
    received = by_type["order.status_changed"]
    assert (received["type"], received["external_id"]) == (
        "order.status_changed",
        str(body["id"]),
    )
    assert (received["from_status"], received["to_status"]) == ("received", "processed")
