"""The outbox is kept only as long as it is useful: messages sent, and messages given up on,
are deleted once older than `CASHBACK_OUTBOX_RETENTION_DAYS`.

Deleted a batch per short transaction, oldest first, skipping any row a sender holds (`SKIP
LOCKED`), so pruning never waits on sending nor makes it wait. Pending messages are never
touched. A message's event key guards "at most once per event" only while its row exists: the
retention (30 days by default, 7 at least) outlives every event that could ring again (a
review slot, a reminder window, a failed order's alert).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.notifications.models import OutboxMessage, OutboxStatus

PRUNE_BATCH = 1000


async def prune_outbox(
    sessionmaker: async_sessionmaker[AsyncSession], retention: timedelta, now: datetime
) -> int:
    """Delete sent and given-up messages older than `retention`; returns how many."""
    cutoff = now - retention
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            batch = (
                select(OutboxMessage.id)
                .where(
                    or_(
                        (OutboxMessage.status == OutboxStatus.sent)
                        & (OutboxMessage.sent_at < cutoff),
                        (OutboxMessage.status == OutboxStatus.failed)
                        & (OutboxMessage.created_at < cutoff),  # given up within hours
                    )
                )
                .order_by(OutboxMessage.id)
                .limit(PRUNE_BATCH)
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
            result = await session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(batch)))
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        total += deleted
        if deleted < PRUNE_BATCH:
            return total
