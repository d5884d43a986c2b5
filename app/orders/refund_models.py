from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin, TimestampMixin


class Refund(IdMixin, TimestampMixin, Base):
    """A platform refund, stored once per refund id; applied to its order when the order has
    been decided (a refund can arrive before the order it refunds)."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    order_external_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # [{"line_id": "…", "quantity": 1, "amount": 3600}], amount-only part, shipping part.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    adjustment_amount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    shipping_amount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    # Money refunded without lines that the payload gives only in another currency (a
    # presentment currency): valued with the order's own rate when the refund is applied.
    amount_currency: Mapped[str | None] = mapped_column(String(3))
    amount_in_currency: Mapped[int | None] = mapped_column(BigInteger)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # What applying it did: reversed amount, or how much cashback it removed before credit.
    effect: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
