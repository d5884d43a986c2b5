"""The read sessions: READ ONLY on the primary too, and the pool gives the connection back
able to write."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import Settings
from tests.support import open_stack


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
