"""schedule_sync: the sync row written with the ledger entry, and its job held for the commit."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete

from app.core.broker import Job
from app.core.uow import take_jobs
from app.credit_sync.models import CreditSync, SyncStatus
from app.credit_sync.service import SYNC_JOB, schedule_sync
from app.shops.models import Shop
from tests.credit_sync.helpers import configure_shop, credit_order
from tests.shopify.admin_standin import FakeShopify
from tests.support import Stack


@pytest.mark.parametrize(
    ("push", "uninstalled", "status"),
    [
        (True, False, SyncStatus.pending),
        (False, False, SyncStatus.skipped),
        (True, True, SyncStatus.skipped),
    ],
)
async def test_schedule_sync_writes_the_row_and_queues_only_a_push(
    stack: Stack, shopify: FakeShopify, push: bool, uninstalled: bool, status: SyncStatus
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify, push=False)
    entry_id = await credit_order(stack, shop)  # a real entry; nothing pushed
    async with stack.resources.sessionmaker() as session:
        await session.execute(delete(CreditSync).where(CreditSync.ledger_entry_id == entry_id))
        db_shop = await session.get_one(Shop, shop.id)
        db_shop.push_store_credit = push
        db_shop.uninstalled_at = datetime.now(UTC) if uninstalled else None

        await schedule_sync(session, db_shop, entry_id)
        await schedule_sync(session, db_shop, entry_id)  # a second call changes nothing

        row = await session.get_one(CreditSync, entry_id)
        assert (row.status, row.shop_id, row.attempts, row.shortfall) == (status, shop.id, 0, 0)
        pushed = status == SyncStatus.pending
        expected = [Job(SYNC_JOB, (entry_id,), f"sync:{entry_id}")] if pushed else []
        assert take_jobs(session) == expected
        await session.rollback()
