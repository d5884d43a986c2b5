from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, TimestampMixin, UpdatedAtMixin


class SyncStatus(StrEnum):
    pending = "pending"  # not tried yet, or a retry is due
    in_flight = "in_flight"  # an attempt was recorded before calling Shopify
    synced = "synced"
    failed = "failed"  # out of retries or refused (userErrors); `error` says why
    skipped = "skipped"  # the shop keeps a ledger only, or was uninstalled


class CreditSync(TimestampMixin, UpdatedAtMixin, Base):
    """Where a ledger entry stands on the shop's own store-credit account. The ledger is
    append-only, so its sync state lives here, one row per entry."""

    __tablename__ = "credit_syncs"
    __table_args__ = (
        Index(
            "ix_credit_syncs_due",
            "updated_at",
            postgresql_where=text("status IN ('pending', 'in_flight')"),
        ),
        # Finding the credit a Shopify transaction (an expiration's credit) belongs to.
        Index(  # partial: a sync row has no transaction until Shopify answers
            "ix_credit_syncs_shop_id_platform_transaction_id",
            "shop_id",
            "platform_transaction_id",
            postgresql_where=text("platform_transaction_id IS NOT NULL"),
        ),
    )

    ledger_entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    status: Mapped[SyncStatus] = mapped_column(String(16), default=SyncStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    platform_transaction_id: Mapped[str | None] = mapped_column(String(255))
    # A debit Shopify could not make in full (the customer spent the credit): minor units.
    shortfall: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
