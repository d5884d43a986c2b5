from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
