"""The ledger is append-only in the database itself: no statement of an application
connection can change or remove an entry, whatever it sets; a shop's ledger is erased only by
`erase_shop_ledger`, the one audited path (shop/redact)."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.ledger.models import LedgerEntry, LedgerErasure
from tests.payloads import paid_order
from tests.support import Stack


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount = 1",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries CASCADE",
        # The switch the trigger used to honour: any connection could say it.
        "SET LOCAL cashback.redacting = 'on'; DELETE FROM ledger_entries",
        "DELETE FROM shops",  # the cascade would take the ledger along
    ],
)
async def test_the_database_refuses_to_edit_or_remove_ledger_entries(
    stack: Stack, statement: str
) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order())
    await stack.run_worker()
    assert await stack.credit_count(shop) == 1
    async with stack.resources.engine.connect() as conn:
        with pytest.raises(DBAPIError, match="append-only"):
            for part in statement.split("; "):
                await conn.execute(text(part))
    assert await stack.credit_count(shop) == 1


async def test_shop_redaction_erases_the_ledger_through_the_one_path_and_logs_it(
    stack: Stack,
) -> None:
    shop, other = await stack.create_shop(), await stack.create_shop()
    for each in (shop, other):
        await stack.deliver(each, paid_order())
    await stack.run_worker()
    await stack.deliver(shop, {"shop_domain": shop.domain}, topic="shop/redact")
    await stack.run_worker()
    assert (await stack.credit_count(shop), await stack.credit_count(other)) == (0, 1)
    async with stack.resources.sessionmaker() as session:
        [erasure] = list(await session.scalars(select(LedgerErasure)))
        left = await session.scalar(select(func.count()).select_from(LedgerEntry))
    assert (erasure.shop_id, erasure.entries, left) == (shop.id, 1, 1)
