from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin, TimestampMixin, UpdatedAtMixin
from app.orders.state import OrderStatus


class Order(IdMixin, TimestampMixin, UpdatedAtMixin, Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_orders_shop_id_id", "shop_id", "id"),
        Index("ix_orders_shop_id_status_id", "shop_id", "status", "id"),
        # Partial where a column starts out empty: each order row is written three times (its
        # status is indexed, so no update is HOT), and an index without the empty versions
        # takes fewer entries (docs/scaling.md).
        Index(
            "ix_orders_shop_id_customer_id_id",
            "shop_id",
            "customer_id",
            "id",
            postgresql_where=text("customer_id IS NOT NULL"),
        ),
        Index("ix_orders_shop_id_created_at", "shop_id", "created_at"),
        Index(  # search by order name (#1042)
            "ix_orders_shop_id_name", "shop_id", "name", postgresql_where=text("name IS NOT NULL")
        ),
        Index("ix_orders_received", "updated_at", postgresql_where=text("status = 'received'")),
        Index("ix_orders_award_due", "award_at", postgresql_where=text("status = 'scheduled'")),
        Index(  # the dashboard's scheduled amount, from the index alone
            "ix_orders_scheduled_amount",
            "shop_id",
            postgresql_include=["award_amount"],
            postgresql_where=text("status = 'scheduled'"),
        ),
        # Dashboard: approval times (last 30 days) and processing latency (last 24 hours)
        # (covering, so the percentiles read the index alone), and the oldest review wait.
        Index(
            "ix_orders_shop_id_decided_at",
            "shop_id",
            "decided_at",
            postgresql_include=["review_started_at"],
            postgresql_where=text("decided_at IS NOT NULL"),
        ),
        Index(
            "ix_orders_shop_id_processed_at",
            "shop_id",
            "processed_at",
            postgresql_include=["paid_received_at"],
            postgresql_where=text("processed_at IS NOT NULL"),
        ),
        Index(
            "ix_orders_review_waiting",
            "shop_id",
            "review_started_at",
            postgresql_where=text("status IN ('pending', 'held')"),
        ),
    )

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    customer_external_id: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    financial_status: Mapped[str | None] = mapped_column(String(32))
    test: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    total_amount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    eligible_amount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    cashback_amount: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    program_version_id: Mapped[int | None] = mapped_column(ForeignKey("program_versions.id"))
    # The platform-neutral snapshot last applied: what previews and simulations recalculate.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # How the order was paid, as Shopify's transactions said when they were read (order
    # webhooks carry none): {"total", "gift_card", "store_credit", "read_at"}, minor units.
    payments: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    status: Mapped[OrderStatus] = mapped_column(
        String(32), default=OrderStatus.received, nullable=False
    )
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The platform's own updated_at of the snapshot we hold: older deliveries never overwrite it.
    source_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the webhook that told us the order was paid reached the service (latency origin).
    paid_received_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    hold_reasons: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default="{}", nullable=False
    )
    # Review: when the order entered pending/held, when a decision was made, and the note.
    review_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    review_note: Mapped[str | None] = mapped_column(Text)
    # Approved credit waiting for the return window (`scheduled`), or an adjusted amount.
    award_amount: Mapped[int | None] = mapped_column(BigInteger)
    award_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A digest of the lines as the last snapshot's calculation wrote them (None once anything
    # else changed a line): a snapshot that calculates to the same lines leaves them in place.
    lines_digest: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)

    __mapper_args__ = {"version_id_col": version}


class OrderLine(IdMixin, Base):
    __tablename__ = "order_lines"
    __table_args__ = (UniqueConstraint("order_id", "external_id"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    product_id: Mapped[str | None] = mapped_column(String(64))
    variant_id: Mapped[str | None] = mapped_column(String(64))
    sku: Mapped[str | None] = mapped_column(String(255))
    vendor: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(512), nullable=False)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    unit_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    discount_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    gift_card: Mapped[bool] = mapped_column(Boolean, nullable=False)
    eligible_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    rate: Mapped[Decimal] = mapped_column(Numeric(9, 4), nullable=False)
    cashback_amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    refunded_quantity: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", nullable=False
    )
    # Cumulative credit taken back for this line (after credit) or cashback removed (before).
    reversed_amount: Mapped[int] = mapped_column(
        BigInteger, default=0, server_default="0", nullable=False
    )
    rate_source: Mapped[str] = mapped_column(
        String(300), default="base", server_default="base", nullable=False
    )
    campaigns: Mapped[list[str]] = mapped_column(
        ARRAY(String(120)), default=list, server_default="{}", nullable=False
    )
