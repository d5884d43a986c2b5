import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from app.migrate import alembic_config, upgrade
from tests.conftest import libpq_url, with_database


async def test_the_models_match_the_migrations(template_url: str) -> None:
    # Raises when autogenerate would find a difference: a schema change without a migration.
    await asyncio.to_thread(command.check, alembic_config(template_url))


def test_alembic_has_a_single_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config("postgresql+asyncpg://unused")).get_heads()
    assert len(heads) == 1, heads


@asynccontextmanager
async def database_at(
    servers: tuple[str, str], database_url: str, revision: str
) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A database of its own migrated up to `revision`: its URL and a connection to it."""
    admin = await asyncpg.connect(libpq_url(servers[0]))
    name = f"{make_url(database_url).database}_steps"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(database_url, name)
        await asyncio.to_thread(upgrade, url, revision)
        conn = await asyncpg.connect(libpq_url(url))
        try:
            yield url, conn
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_the_inbox_moves_to_one_row_per_topic_and_event_keeping_every_row(
    servers: tuple[str, str], database_url: str
) -> None:
    """From the schema before (unique per shop and event key) to per shop, topic and event
    key: rows stored before stay as they were, and one event id then fits two topics."""
    async with database_at(servers, database_url, "118ade00c0ae") as (url, conn):  # before
        shop = await conn.fetchval(
            "INSERT INTO shops (platform, domain, currency, timezone, processing_mode,"
            " webhook_secret) VALUES ('shopify', 'm.myshopify.com', 'USD', 'UTC',"
            " 'automatic', 's') RETURNING id"
        )
        for key in ("evt-1", "evt-2"):
            await conn.execute(
                "INSERT INTO webhook_events (shop_id, topic, event_key, body, status)"
                " VALUES ($1, 'orders/paid', $2, '{}', 'processed')",
                shop,
                key,
            )
        await asyncio.to_thread(upgrade, url, "head")
        kept = await conn.fetch("SELECT topic, event_key FROM webhook_events ORDER BY id")
        assert [tuple(r) for r in kept] == [("orders/paid", "evt-1"), ("orders/paid", "evt-2")]
        await conn.execute(
            "INSERT INTO webhook_events (shop_id, topic, event_key, body, status)"
            " VALUES ($1, 'orders/updated', 'evt-1', '{}', 'received')",
            shop,
        )
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute(
                "INSERT INTO webhook_events (shop_id, topic, event_key, body, status)"
                " VALUES ($1, 'orders/updated', 'evt-1', '{}', 'received')",
                shop,
            )
        version = await conn.fetchval("SELECT platform_api_version FROM shops")
        assert version == "2026-10"  # the old default is out of Shopify's support


async def test_events_waiting_before_ready_at_are_ready_at_once_and_bodies_use_lz4(
    servers: tuple[str, str], database_url: str
) -> None:
    """An event stored unhandled before the inbox had `ready_at` is ready since it was
    received (the drain takes it at once, oldest first); one handled is left out of the
    drain's index. New bodies are compressed with lz4 where the server has it."""
    async with database_at(servers, database_url, "8b1e4d7a2c93") as (url, conn):  # before
        shop = await conn.fetchval(
            "INSERT INTO shops (platform, domain, currency, timezone, processing_mode,"
            " webhook_secret) VALUES ('shopify', 'm.myshopify.com', 'USD', 'UTC',"
            " 'automatic', 's') RETURNING id"
        )
        for key, status in (("waiting", "received"), ("done", "processed")):
            await conn.execute(
                "INSERT INTO webhook_events (shop_id, topic, event_key, body, status,"
                " received_at) VALUES ($1, 'orders/create', $2, '{}', $3,"
                " now() - interval '1 hour')",
                shop,
                key,
                status,
            )
        await asyncio.to_thread(upgrade, url, "head")
        rows = await conn.fetch(
            "SELECT event_key, ready_at = received_at AS ready_since_received"
            " FROM webhook_events ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [("waiting", True), ("done", False)]
        lz4 = await conn.fetchval(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        method = await conn.fetchval(
            "SELECT attcompression::text FROM pg_attribute"
            " WHERE attrelid = 'webhook_events'::regclass AND attname = 'body'"
        )
        assert method == ("l" if lz4 else "")
