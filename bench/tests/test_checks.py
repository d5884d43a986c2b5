"""The checks the bench's figures rest on: the integrity check (on a real PostgreSQL built by
the migrations), the durability refusal, the SSE client's framing and the percentiles.

    CASHBACK_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/pytest -q -p no:cacheprovider bench/tests
"""

from __future__ import annotations

import asyncio
import math
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from sqlalchemy.engine import make_url

from app import migrate
from app.events.publish import envelope, order_status_changed
from app.events.stream import event_from_message, sse_comment
from bench.pg import check_orders, durability_problem
from bench.sse import EventStream
from bench.stats import percentile

CASHBACK = 438
_NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
async def conn() -> AsyncIterator[asyncpg.Connection]:
    url = make_url(
        os.environ.get("CASHBACK_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/x")
    )
    server = url.set(drivername="postgresql", database="postgres").render_as_string(False)
    name = f"cashback_bench_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(migrate.upgrade, url.set(database=name).render_as_string(False))
        db = await asyncpg.connect(
            url.set(drivername="postgresql", database=name).render_as_string(False)
        )
        try:
            yield db
        finally:
            await db.close()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def a_shop(conn: asyncpg.Connection) -> int:
    shop: int = await conn.fetchval(
        "INSERT INTO shops (platform, domain, currency, timezone, processing_mode, webhook_secret) "
        "VALUES ('shopify', 's.myshopify.com', 'USD', 'UTC', 'automatic', 'whsec_x') RETURNING id"
    )
    await conn.execute(
        "INSERT INTO customers (shop_id, external_id, created_at, updated_at) "
        "VALUES ($1, 'c1', now(), now())",
        shop,
    )
    return shop


async def an_order(conn: asyncpg.Connection, shop: int, external_id: str, status: str) -> int:
    order: int = await conn.fetchval(
        "INSERT INTO orders (shop_id, external_id, currency, status, version, test, "
        "total_amount, eligible_amount, cashback_amount, customer_id) "
        "SELECT $1, $2, 'USD', $3, 1, false, 10000, 8750, $4, min(id) FROM customers "
        "WHERE shop_id = $1 RETURNING id",
        shop,
        external_id,
        status,
        CASHBACK,
    )
    return order


async def a_credit(conn: asyncpg.Connection, shop: int, order: int, amount: int, key: str) -> None:
    await conn.execute(
        "INSERT INTO ledger_entries (shop_id, customer_id, order_id, kind, amount, currency, "
        "idempotency_key) SELECT $1, customer_id, id, 'credit', $2, 'USD', $3 FROM orders "
        "WHERE id = $4",
        shop,
        amount,
        key,
        order,
    )


async def credited_orders(conn: asyncpg.Connection, count: int) -> tuple[int, list[int]]:
    shop = await a_shop(conn)
    orders = []
    for n in range(count):
        order = await an_order(conn, shop, str(n), "processed")
        await a_credit(conn, shop, order, CASHBACK, f"order:{order}:credit")
        orders.append(order)
    return shop, orders


async def test_orders_each_credited_once_with_their_cashback_pass(conn: asyncpg.Connection) -> None:
    shop, _ = await credited_orders(conn, 3)
    result = await check_orders(conn, shop, 3)
    assert result.problems == []
    assert (result.processed, result.credited_minor, result.owed_minor) == (
        3,
        3 * CASHBACK,
        3 * CASHBACK,
    )
    assert (await check_orders(conn, shop, 2, ["0", "1"])).ok


async def test_an_order_credited_twice_fails(conn: asyncpg.Connection) -> None:
    shop, orders = await credited_orders(conn, 3)
    await a_credit(conn, shop, orders[1], CASHBACK, "again")
    problems = (await check_orders(conn, shop, 3)).problems
    assert problems == [
        "1 orders are credited more than once",
        f"the ledger credits {4 * CASHBACK} minor units, the orders are owed {3 * CASHBACK}",
    ]


async def test_a_credit_of_another_amount_fails(conn: asyncpg.Connection) -> None:
    shop, _ = await credited_orders(conn, 1)
    order = await an_order(conn, shop, "short", "processed")
    await a_credit(conn, shop, order, CASHBACK - 1, "short")
    problems = (await check_orders(conn, shop, 2)).problems
    assert problems[0] == "1 orders are credited another amount than their cashback"


async def test_orders_missing_unprocessed_or_uncredited_fail(conn: asyncpg.Connection) -> None:
    shop, _ = await credited_orders(conn, 1)
    await an_order(conn, shop, "waiting", "pending")
    await an_order(conn, shop, "lost", "processed")  # processed, but no credit
    problems = (await check_orders(conn, shop, 4)).problems
    assert problems == [
        "1 of 4 orders are not in the orders table",
        "1 orders not processed (not credited)",
        "1 processed orders have no credit in the ledger",
        f"the ledger credits {CASHBACK} minor units, the orders are owed {2 * CASHBACK}",
    ]


def test_durability_off_is_refused() -> None:
    durable = {"fsync": "on", "synchronous_commit": "on"}
    assert durability_problem(durable) is None
    assert durability_problem(durable | {"synchronous_commit": "local"}) is None
    for name in ("fsync", "synchronous_commit"):
        problem = durability_problem(durable | {name: "off"})
        assert problem is not None and problem.startswith(f"{name} is off")


def chunk(text: str) -> bytes:
    data = text.encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def test_the_sse_client_notes_each_credit_once_as_the_service_frames_it() -> None:
    """Frames as the service writes them (app.events.stream), chunked as uvicorn sends them,
    one split across two chunks."""

    def status_frame(external_id: str, to_status: str) -> str:
        event = order_status_changed(1, external_id, "pending", to_status, _NOW)
        frame = event_from_message(envelope(event))
        assert frame is not None
        return frame.encode().decode()

    def comment(text: str, retry_ms: int | None = None) -> str:
        return sse_comment(text, retry_ms=retry_ms).encode().decode()

    processed = status_frame("7", "processed")
    body = [
        comment("connected", retry_ms=3000),
        status_frame("6", "held"),
        processed[:-30],  # split inside its data line
        processed[-30:] + comment("keep-alive"),
        status_frame("7", "processed"),  # a second event for the same order: the first counts
    ]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        assert b"Authorization: Bearer cbk_key" in request
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"transfer-encoding: chunked\r\n\r\n"
        )
        for part in body:
            writer.write(chunk(part))
            await writer.drain()
            await asyncio.sleep(0.01)  # a pace, not a wait: each chunk arrives on its own
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    stream = EventStream("127.0.0.1", port, "cbk_key")
    await stream.open()
    await asyncio.wait_for(stream.ended(), 5)
    await stream.close()
    server.close()
    assert list(stream.credited) == ["7"]
    assert stream.counts == {"order.status_changed": 3}
    assert stream.error is not None and "ended" in stream.error
    assert orjson.loads(envelope({"type": "x"}))["event"] == {"type": "x"}


def test_percentiles_of_never_answered_requests_are_never() -> None:
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert percentile([1.0, 2.0], 50) == 1.5
    assert percentile([1.0, 2.0, math.inf, math.inf], 95) == math.inf
    assert percentile([1.0, 2.0, 3.0, math.inf], 50) == 2.5
    assert math.isnan(percentile([], 50))
