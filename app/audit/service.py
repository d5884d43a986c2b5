from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    api_key_id: int | None = None


SYSTEM = Actor("system")


def record(
    session: AsyncSession,
    *,
    shop_id: int,
    actor: Actor,
    action: str,
    subject_type: str,
    subject_id: int,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    deferred: list[dict[str, Any]] | None = session.info.get(_DEFERRED)
    if deferred is not None:  # a batch: written at once by `write_deferred`
        deferred.append(
            {
                "audit_shop": shop_id,
                "audit_actor": actor.name,
                "audit_api_key": actor.api_key_id,
                "audit_action": action,
                "audit_subject_type": subject_type,
                "audit_subject_id": subject_id,
                "audit_before": before,
                "audit_after": after,
                "audit_reason": reason,
            }
        )
        return
    session.add(
        AuditEvent(
            shop_id=shop_id,
            actor=actor.name,
            api_key_id=actor.api_key_id,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            before=before,
            after=after,
            reason=reason,
        )
    )


_DEFERRED = "cashback.deferred_audit"
_events = cast(Table, AuditEvent.__table__)
_INSERT = insert(_events).values(
    shop_id=bindparam("audit_shop"),
    actor=bindparam("audit_actor"),
    api_key_id=bindparam("audit_api_key"),
    action=bindparam("audit_action"),
    subject_type=bindparam("audit_subject_type"),
    subject_id=bindparam("audit_subject_id"),
    before=bindparam("audit_before"),
    after=bindparam("audit_after"),
    reason=bindparam("audit_reason"),
)


def defer(session: AsyncSession) -> None:
    """Hold this transaction's audit events and insert them at once, in the order recorded,
    before it commits (`write_deferred`): nothing in the transaction reads them back. An ORM
    object per event cost a batch more client CPU than the rest of the event's bookkeeping."""
    session.info.setdefault(_DEFERRED, [])


async def write_deferred(session: AsyncSession) -> None:
    rows: list[dict[str, Any]] = session.info.pop(_DEFERRED, [])
    if rows:
        await session.execute(_INSERT, rows)
