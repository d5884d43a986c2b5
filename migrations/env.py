"""Alembic environment (async). The URL comes from the caller (`app.migrate`) or the settings."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import UNPREPARED
from app.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from app.config import get_settings

    configured = get_settings().database_url
    if not configured:
        raise RuntimeError("set CASHBACK_DATABASE_URL, or run `cashback migrate` (embedded)")
    return configured


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    # No prepared statement kept: the URL may be a PgBouncer's (transaction pooling); a
    # migration's speed does not hang on them.
    engine = create_async_engine(_url(), connect_args=UNPREPARED)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
