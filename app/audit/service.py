from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.uow import Part, Stage, uow_of


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
    held = uow_of(session).get(AuditRows)
    if held is not None:  # a batch: inserted at once before the commit
        held.rows.append(
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


@dataclass
class AuditRows(Part):
    """A batch's audit events, inserted at once in the order recorded before it commits:
    nothing in the batch reads them back, and an ORM object per event cost a batch more client
    CPU than the rest of the event's bookkeeping."""

    stage = Stage.AUDIT
    batched = True
    rows: list[dict[str, Any]] = field(default_factory=list)

    async def flush(self, session: AsyncSession) -> None:
        rows, self.rows = self.rows, []
        if rows:
            await session.execute(_INSERT, rows)
