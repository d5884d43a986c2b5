from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base


class OrderStatsHourly(Base):
    """Order figures per shop and UTC hour, kept up to date in the same transaction as the
    change they count. Spread over a few shards so concurrent credits of one shop do not
    queue on one row; readers sum the shards."""

    __tablename__ = "order_stats_hourly"

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    processed: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    rejected: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    cashback_issued: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0", nullable=False
    )
    reversed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    expired: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    redeemed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
