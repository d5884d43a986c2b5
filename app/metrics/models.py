from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, ForeignKey, Integer, SmallInteger
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


class OrderQueues(Base):
    """How many of a shop's orders wait in each open status (the dashboard's queues), kept by
    the status change itself, in its transaction. Spread over the same shards as the hourly
    figures; readers sum them."""

    __tablename__ = "order_queues"

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    pending: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    held: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    failed: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0", nullable=False)
    awaiting_customer: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0", nullable=False
    )


class ReviewTimesDaily(Base):
    """How long reviews took (review started → decided), as a histogram per shop and UTC day
    of the decision: `bucket` b holds the reviews of 2^(b/16) to 2^((b+1)/16) seconds (b = 0
    from no time at all). Thirty days of a shop are a few thousand rows at most, whatever the
    number of orders, where the orders themselves would be hundreds of thousands to sort."""

    __tablename__ = "review_times_daily"

    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    reviews: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
