from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin


class EventStatus(StrEnum):
    received = "received"  # stored, not handled yet: the sweeper's to-do list
    processed = "processed"
    ignored = "ignored"  # a topic the service does not act on
    failed = "failed"  # malformed, or out of retries; `error` says why


# The drain's to-do list: events to be claimed by a batch (attempts > 0 are left to their own
# job's retries). The index of that list is partial on exactly this predicate, and the claim
# states it in these words (not as bound parameters), so every plan of it can use the index.
UNCLAIMED = "status = 'received' AND attempts = 0"


class WebhookEvent(IdMixin, Base):
    """The inbox: every accepted delivery, byte for byte, unique per shop, topic and event
    (Shopify gives every delivery of one merchant action the same event id)."""

    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "topic", "event_key"),
        CheckConstraint("status IN ('received', 'processed', 'ignored', 'failed')", name="status"),
        # Scanned in order from its start by every claim, which stops at the first row not
        # yet ready: it never walks past the creates that are still settling.
        Index("ix_webhook_events_ready", "ready_at", postgresql_where=text(UNCLAIMED)),
    )

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(64), nullable=False)
    # X-Shopify-Event-Id, or X-Shopify-Webhook-Id when the sender gives no event id.
    event_key: Mapped[str] = mapped_column(String(255), nullable=False)
    webhook_id: Mapped[str | None] = mapped_column(String(255))
    api_version: Mapped[str | None] = mapped_column(String(32))
    # X-Shopify-Triggered-At: when Shopify created the delivery (its lag is received_at - this).
    triggered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    body: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    status: Mapped[EventStatus] = mapped_column(
        String(16), default=EventStatus.received, nullable=False
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    handled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a drain batch may take the event: at once (received_at), but an `orders/create`
    # only `create_settle_s` later, so its `orders/paid` meets it in one batch (the intake
    # stamps it; app.inbox.drain.claim_batch).
    ready_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
