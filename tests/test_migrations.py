import asyncio

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


async def test_the_inbox_moves_to_one_row_per_topic_and_event_keeping_every_row(
    servers: tuple[str, str], database_url: str
) -> None:
    """From the schema before (unique per shop and event key) to per shop, topic and event
    key: rows stored before stay as they were, and one event id then fits two topics."""
    admin = await asyncpg.connect(libpq_url(servers[0]))
    name = f"{make_url(database_url).database}_steps"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = with_database(database_url, name)
        await asyncio.to_thread(upgrade, url, "118ade00c0ae")  # the revision before
        conn = await asyncpg.connect(libpq_url(url))
        try:
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
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
