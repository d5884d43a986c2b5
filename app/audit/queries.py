"""Reading the audit log: the list filters, its pages, and the CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.pagination import decode_cursor

CSV_BATCH = 1000
CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "action",
    "subject_type",
    "subject_id",
    "reason",
    "before",
    "after",
)


@dataclass(frozen=True, slots=True)
class AuditFilter:
    shop_id: int
    date_from: datetime | None = None  # at or after
    date_to: datetime | None = None  # before
    actor: str | None = None
    action: str | None = None
    order_id: int | None = None


async def page(
    session: AsyncSession, where: AuditFilter, *, cursor: str | None, limit: int
) -> list[AuditEvent]:
    """Up to `limit` + 1 matching events after `cursor`, newest first."""
    stmt = _query(where)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(AuditEvent.id < after)
    return list(await session.scalars(stmt.order_by(AuditEvent.id.desc()).limit(limit + 1)))


def csv_rows(sessionmaker: Any, where: AuditFilter) -> AsyncIterator[str]:
    """Every matching event as CSV, oldest first."""
    return _csv_rows(sessionmaker, _query(where))


def _query(where: AuditFilter) -> Select[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.shop_id == where.shop_id)
    if where.date_from is not None:
        stmt = stmt.where(AuditEvent.created_at >= where.date_from)
    if where.date_to is not None:
        stmt = stmt.where(AuditEvent.created_at < where.date_to)
    if where.actor is not None:
        stmt = stmt.where(AuditEvent.actor == where.actor)
    if where.action is not None:
        stmt = stmt.where(AuditEvent.action == where.action)
    if where.order_id is not None:
        stmt = stmt.where(
            AuditEvent.subject_type == "order", AuditEvent.subject_id == where.order_id
        )
    return stmt


async def _csv_rows(sessionmaker: Any, stmt: Select[AuditEvent]) -> AsyncIterator[str]:
    """The export, oldest first, read in batches so a year of events never sits in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    after_id = 0
    async with sessionmaker() as session:
        while True:
            batch = list(
                await session.scalars(
                    stmt.where(AuditEvent.id > after_id).order_by(AuditEvent.id).limit(CSV_BATCH)
                )
            )
            for e in batch:
                writer.writerow(
                    (
                        e.id,
                        e.created_at.isoformat(),
                        e.actor,
                        e.action,
                        e.subject_type,
                        e.subject_id,
                        e.reason or "",
                        orjson.dumps(e.before).decode() if e.before is not None else "",
                        orjson.dumps(e.after).decode() if e.after is not None else "",
                    )
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if len(batch) < CSV_BATCH:
                return
            after_id = batch[-1].id
