from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, IdMixin, TimestampMixin, UpdatedAtMixin


class Product(IdMixin, TimestampMixin, UpdatedAtMixin, Base):
    """What the shop's catalog says of a product: line items carry only its id, SKU and
    vendor, while program rules may match its type, tags and collections."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str | None] = mapped_column(String(512))
    product_type: Mapped[str | None] = mapped_column(String(255))
    vendor: Mapped[str | None] = mapped_column(String(255))
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list, nullable=False)
    collections: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list, nullable=False)
