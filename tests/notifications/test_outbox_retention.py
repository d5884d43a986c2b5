"""Outbox retention: sent and given-up messages go after the retention, pending ones never,
and a row a sender holds is skipped rather than waited for."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from app.notifications.models import OutboxMessage, OutboxStatus
from app.notifications.retention import prune_outbox
from tests.support import Stack

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RETENTION = timedelta(days=30)


async def test_old_sent_and_given_up_messages_are_pruned_and_the_rest_kept(stack: Stack) -> None:
    shop = await stack.create_shop()
    old, recent = NOW - timedelta(days=31), NOW - timedelta(days=29)
    rows = {
        "sent-old": (OutboxStatus.sent, old),
        "sent-recent": (OutboxStatus.sent, recent),
        "failed-old": (OutboxStatus.failed, old),
        "failed-recent": (OutboxStatus.failed, recent),
        "pending-old": (OutboxStatus.pending, old),
        "held-by-a-sender": (OutboxStatus.sent, old),
    }
    async with stack.resources.sessionmaker() as session:
        for key, (status, at) in rows.items():
            session.add(
                OutboxMessage(
                    shop_id=shop.id,
                    kind="alert",
                    event_key=key,
                    event_type="order.failed",
                    payload={},
                    status=status,
                    sent_at=at if status == OutboxStatus.sent else None,
                )
            )
        await session.flush()
        await session.execute(
            update(OutboxMessage)
            .values(created_at=old)
            .where(OutboxMessage.event_key.like("%old%"))
        )
        await session.execute(
            update(OutboxMessage)
            .values(created_at=old)
            .where(OutboxMessage.event_key == "held-by-a-sender")
        )
        await session.commit()

    async with stack.resources.sessionmaker() as sender, sender.begin():
        await sender.execute(
            select(OutboxMessage)
            .where(OutboxMessage.event_key == "held-by-a-sender")
            .with_for_update()
        )
        # A sender holds one row: pruning goes on without waiting for it.
        pruned = await asyncio.wait_for(
            prune_outbox(stack.resources.sessionmaker, RETENTION, NOW), timeout=10
        )
    assert pruned == 2

    async with stack.resources.sessionmaker() as session:
        left = set(await session.scalars(select(OutboxMessage.event_key)))
    assert left == {"sent-recent", "failed-recent", "pending-old", "held-by-a-sender"}
    # Once the sender lets go, the next prune takes it.
    assert await prune_outbox(stack.resources.sessionmaker, RETENTION, NOW) == 1
