from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin, TimestampMixin, UpdatedAtMixin


class Customer(IdMixin, TimestampMixin, UpdatedAtMixin, Base):
    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))
    first_name: Mapped[str | None] = mapped_column(String(255))
    last_name: Mapped[str | None] = mapped_column(String(255))
    # The account's standing as the platform last said it (None: never said): see
    # `orders.holds.account_problem`.
    verified_email: Mapped[bool | None] = mapped_column(Boolean)
    account_state: Mapped[str | None] = mapped_column(String(32))


class EntryKind(StrEnum):
    credit = "credit"
    reversal = "reversal"  # a refund or cancellation took part of a credit back
    expiry = "expiry"  # what was left of a credit when it expired
    redemption = "redemption"  # the customer spent part of a credit (ledger-only shops)


# Entries that take from one credit (`reverses_entry_id`): what is left of a credit is its
# amount plus theirs (they are negative).
CONSUMING = (EntryKind.reversal, EntryKind.expiry, EntryKind.redemption)


class LedgerEntry(IdMixin, TimestampMixin, Base):
    """Append-only store-credit movements; a database trigger refuses UPDATE and DELETE."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        CheckConstraint(
            "(kind = 'credit' AND amount > 0) OR "
            "(kind IN ('reversal', 'expiry', 'redemption') AND amount < 0)",
            name="amount_sign",
        ),
        CheckConstraint(
            "kind = 'credit' OR reverses_entry_id IS NOT NULL", name="consumes_a_credit"
        ),
        Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),
        Index("ix_ledger_entries_shop_id_created_at", "shop_id", "created_at"),
        # Partial: a credit (most entries) reverses nothing and spends no redemption.
        Index(
            "ix_ledger_entries_reverses_entry_id",
            "reverses_entry_id",
            postgresql_where=text("reverses_entry_id IS NOT NULL"),
        ),
        Index(
            "ix_ledger_entries_redemption_id",
            "redemption_id",
            postgresql_where=text("redemption_id IS NOT NULL"),
        ),
        # The sweeper's and the dashboard's window of credits that expire.
        Index(
            "ix_ledger_entries_expiring",
            "shop_id",
            "expires_at",
            postgresql_where=text("kind = 'credit' AND expires_at IS NOT NULL"),
        ),
    )

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[EntryKind] = mapped_column(String(16), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)
    # Business key of the movement (e.g. "order:42:credit"): a retry can never write it twice.
    idempotency_key: Mapped[str] = mapped_column(String(255), nullable=False)
    reverses_entry_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_entries.id"))
    description: Mapped[str | None] = mapped_column(Text)
    # A credit's expiry, fixed when it is written (the program's `credit_expiry_days` then).
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A redemption entry's redemption (one entry per credit it spent).
    redemption_id: Mapped[int | None] = mapped_column(ForeignKey("redemptions.id"))


class Redemption(IdMixin, TimestampMixin, Base):
    """Credit a customer spent, once per (shop, reference): the merchant's own reference
    (e.g. their order or POS receipt) makes a retried request a no-op. Its ledger entries
    (`kind = redemption`) say which credits it spent."""

    __tablename__ = "redemptions"
    __table_args__ = (UniqueConstraint("shop_id", "reference"),)

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    reference: Mapped[str] = mapped_column(String(255), nullable=False)
    amount: Mapped[int] = mapped_column(BigInteger, nullable=False)
    currency: Mapped[str] = mapped_column(String(3), nullable=False)


class LedgerErasure(IdMixin, Base):
    """A shop's ledger erased (shop/redact), written only by the database's `erase_shop_ledger`,
    the one path that can remove ledger entries. Kept after the shop is gone: no personal data."""

    __tablename__ = "ledger_erasures"

    shop_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    entries: Mapped[int] = mapped_column(BigInteger, nullable=False)
    erased_by: Mapped[str] = mapped_column(Text, nullable=False)
    erased_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
