from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.core.schemas import RequestModel


class ProductWrite(RequestModel):
    title: str | None = Field(default=None, max_length=512)
    product_type: str | None = Field(default=None, max_length=255)
    vendor: str | None = Field(default=None, max_length=255)
    tags: list[str] = Field(default_factory=list, max_length=250)
    collections: list[str] = Field(
        default_factory=list, max_length=250, description="Collection ids or handles."
    )


class ProductRead(ProductWrite):
    id: str = Field(description="The platform's product id.")
    updated_at: datetime
