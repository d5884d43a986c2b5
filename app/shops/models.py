from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin, TimestampMixin

# A version Shopify supports today (each is supported for about a year).
DEFAULT_API_VERSION = "2026-10"


class ProcessingMode(StrEnum):
    automatic = "automatic"
    manual = "manual"


class ApiKeyRole(StrEnum):
    admin = "admin"
    reviewer = "reviewer"
    viewer = "viewer"


class Shop(IdMixin, TimestampMixin, Base):
    __tablename__ = "shops"
    __table_args__ = (
        CheckConstraint("processing_mode IN ('automatic', 'manual')", name="processing_mode"),
    )

    platform: Mapped[str] = mapped_column(String(32), default="shopify", nullable=False)
    domain: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", nullable=False)
    processing_mode: Mapped[ProcessingMode] = mapped_column(
        String(16), default=ProcessingMode.automatic, nullable=False
    )
    # Kept in clear: HMAC verification needs the secret itself, not a hash of it.
    webhook_secret: Mapped[str] = mapped_column(Text, nullable=False)
    # Credit waits this many days after payment (the return window), as `scheduled`.
    award_delay_days: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", nullable=False
    )
    # The largest amount a reviewer may approve for one order (minor units); None: no ceiling.
    approval_ceiling: Mapped[int | None] = mapped_column(BigInteger)
    hold_rules: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default="{}", nullable=False
    )
    # Store credit on the platform: off means the service keeps the ledger only.
    push_store_credit: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default="false", nullable=False
    )
    # Encrypted with CASHBACK_SECRET_KEY (Fernet); never returned by the API.
    platform_access_token: Mapped[str | None] = mapped_column(Text)
    platform_api_version: Mapped[str] = mapped_column(
        String(16), default=DEFAULT_API_VERSION, server_default=DEFAULT_API_VERSION, nullable=False
    )
    # Where the Admin API lives; None means https://{domain}. Tests point it at a stand-in.
    platform_api_base_url: Mapped[str | None] = mapped_column(Text)
    notify_customers: Mapped[bool] = mapped_column(
        Boolean, default=True, server_default="true", nullable=False
    )
    notification_webhook_url: Mapped[str | None] = mapped_column(Text)
    alert_webhook_url: Mapped[str | None] = mapped_column(Text)
    # Standard Webhooks signing secret for both webhooks ("whsec_" + base64).
    outbound_webhook_secret: Mapped[str | None] = mapped_column(Text)
    review_deadline_hours: Mapped[int | None] = mapped_column(Integer)
    # When the merchant reviews the queue, and when the weekly audit goes out (shops.schedules).
    review_schedule: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    weekly_audit: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    uninstalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(IdMixin, TimestampMixin, Base):
    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint("role IN ('admin', 'reviewer', 'viewer')", name="role"),)

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[ApiKeyRole] = mapped_column(String(16), nullable=False)
    # The first characters, shown in listings so a merchant can tell keys apart.
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
