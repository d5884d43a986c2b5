from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from app.events.publish import order_status_changed
from tests.events.served import WAIT_S, listening, publish, served, subscribers
from tests.payloads import paid_order
from tests.support import Stack, until


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
    async with served(stack) as client:
        async with listening(client, shop.auth):
            assert await subscribers(stack, shop) == 1

        async def released() -> bool:
            return await subscribers(stack, shop) == 0

        await until(released, WAIT_S, "the stream to unsubscribe")


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
