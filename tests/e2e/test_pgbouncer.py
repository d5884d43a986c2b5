"""The service and a real worker through a real PgBouncer in transaction pooling mode.

PgBouncer gets fewer server connections than the app opens client connections, so one client
connection's transactions run on whichever server connection is free: a prepared statement
kept past its transaction would be missing on the next one (or left behind on the last).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from bench import pooler
from bench.pooler import PgBouncer
from tests.conftest import libpq_url
from tests.e2e.test_paid_order_flow import balance_of, orders_of
from tests.payloads import new_order_id, paid_order
from tests.support import Stack, open_stack

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        pooler.binary() is None, reason="pgbouncer is not installed (apt-get install pgbouncer)"
    ),
]

SERVER_CONNECTIONS = 2
ORDERS = 12


@pytest.fixture
async def bouncer(settings: Settings, tmp_path: Path) -> AsyncIterator[PgBouncer]:
    assert settings.database_url
    started = await asyncio.to_thread(
        PgBouncer.start, settings.database_url, tmp_path / "pgbouncer", pool_size=SERVER_CONNECTIONS
    )
    try:
        yield started
    finally:
        await asyncio.to_thread(started.stop)


@pytest.fixture
async def pooled(settings: Settings, bouncer: PgBouncer) -> AsyncIterator[Stack]:
    """The app and its worker with every database connection through `bouncer`."""
    database = make_url(settings.database_url or "").database
    assert database
    through = settings.model_copy(
        update={"database_url": bouncer.url(database), "database_pooler": "pgbouncer"}
    )
    async with open_stack(through) as stack:
        yield stack


async def named_statements_left(stack: Stack) -> list[int]:
    """Named prepared statements on each server connection PgBouncer holds: as many
    transactions held open at once as it has server connections take one each."""
    url = libpq_url(stack.settings.database_url or "")
    conns = [await asyncpg.connect(url, statement_cache_size=0) for _ in range(SERVER_CONNECTIONS)]
    try:
        counts = []
        for conn in conns:
            await conn.execute("BEGIN")
            counts.append(int(await conn.fetchval("SELECT count(*) FROM pg_prepared_statements")))
        return counts
    finally:
        for conn in conns:
            await conn.close()


async def test_paid_orders_are_credited_through_pgbouncer(
    pooled: Stack, settings: Settings
) -> None:
    shop = await pooled.create_shop()
    answers = await asyncio.gather(
        *(pooled.deliver(shop, paid_order(id=new_order_id())) for _ in range(ORDERS))
    )
    assert [a.status_code for a in answers] == [200] * ORDERS
    await pooled.run_worker(max_jobs=ORDERS)

    orders = await orders_of(pooled, shop)
    assert [(o["status"], o["credited_amount"]) for o in orders] == [("processed", "4.38")] * ORDERS
    assert await pooled.credit_count(shop) == ORDERS
    assert await balance_of(pooled, shop, orders[0]["customer_id"]) == str(Decimal("4.38") * ORDERS)

    # However many client connections the API and the worker opened, the server saw two.
    admin = await asyncpg.connect(libpq_url(settings.database_url or ""))
    try:
        backends = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert backends <= SERVER_CONNECTIONS
    assert await named_statements_left(pooled) == [0] * SERVER_CONNECTIONS
