import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.payloads import paid_order
from tests.support import Stack


async def test_the_database_refuses_to_edit_or_delete_ledger_entries(stack: Stack) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    assert await stack.credit_count(shop) == 1
    for statement in ("UPDATE ledger_entries SET amount = 1", "DELETE FROM ledger_entries"):
        async with stack.resources.engine.connect() as conn:
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text(statement))
    assert await stack.credit_count(shop) == 1
