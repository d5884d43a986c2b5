"""The read sessions: READ ONLY on the primary too, the pool gives the connection back able to
write, and a replica that is down fails the reads it serves, nothing else."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from tests.payloads import paid_order
from tests.support import NO_DATABASE, Stack, open_stack, shopify_headers


async def test_a_read_session_cannot_write_and_its_connection_writes_again(
    settings: Settings,
) -> None:
    # One pooled connection: the read session and the writes after it share it.
    async with open_stack(settings.model_copy(update={"db_pool_size": 1})) as stack:
        shop = await stack.create_shop()
        async with stack.resources.read_sessionmaker() as session:
            with pytest.raises(DBAPIError, match="read-only transaction"):
                await session.execute(
                    text("UPDATE shops SET currency = 'EUR' WHERE id = :id"), {"id": shop.id}
                )
        async with stack.resources.sessionmaker() as session:
            await session.execute(
                text("UPDATE shops SET currency = 'EUR' WHERE id = :id"), {"id": shop.id}
            )
            await session.commit()
        async with stack.resources.read_sessionmaker() as session:
            currency = await session.scalar(
                text("SELECT currency FROM shops WHERE id = :id"), {"id": shop.id}
            )
        assert currency == "EUR"


async def test_a_replica_down_fails_its_reads_only(stack: Stack) -> None:
    shop = await stack.create_shop()
    async with stack.degraded_client(database_read_url=NO_DATABASE) as client:
        listing = await client.get("/v1/orders", headers=shop.auth)
        assert listing.status_code == 503, listing.text
        assert listing.json()["code"] == "database_unavailable"
        body = json.dumps(paid_order()).encode()
        delivered = await client.post(
            "/webhooks/shopify", content=body, headers=shopify_headers(shop, body)
        )
        assert delivered.status_code == 200, delivered.text
        order = await client.get("/v1/customers/1", headers=shop.auth)  # the primary's
        assert order.status_code == 404


def test_a_replica_needs_its_primary() -> None:
    with pytest.raises(ValueError, match="CASHBACK_DATABASE_READ_URL needs CASHBACK_DATABASE_URL"):
        Settings(database_url=None, database_read_url="postgresql+asyncpg://replica/db")
