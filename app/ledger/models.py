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
)
from sqlalchemy.orm import Mapped, mapped_column

from app.kit.db import Base, IdMixin, TimestampMixin, UpdatedAtMixin


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
    reversal = "reversal"


class LedgerEntry(IdMixin, TimestampMixin, Base):
    """Append-only store-credit movements; a database trigger refuses UPDATE and DELETE."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        CheckConstraint(
            "(kind = 'credit' AND amount > 0) OR (kind = 'reversal' AND amount < 0)",
            name="amount_sign",
        ),
        Index("ix_ledger_entries_customer_id_id", "customer_id", "id"),
        Index("ix_ledger_entries_shop_id_created_at", "shop_id", "created_at"),
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
