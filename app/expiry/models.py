from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, SmallInteger, func
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class ExpiryReminder(Base):
    """One reminder of one credit, decided once: sent with `amount` left, or 0 when the credit
    was already spent, reversed or gone (nothing sent). Concurrent sweeps insert it with ON
    CONFLICT DO NOTHING; only the one that wrote it sends the notice."""

    __tablename__ = "expiry_reminders"

    credit_entry_id: Mapped[int] = mapped_column(
        ForeignKey("ledger_entries.id", ondelete="CASCADE"), primary_key=True
    )
    days_before: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
