from __future__ import annotations

from pydantic import BaseModel, Field

from app.shops.models import ProcessingMode


class ShopCreate(BaseModel):
    domain: str = Field(description="The store's domain.", examples=["acme.myshopify.com"])
    currency: str = Field(default="USD", description="ISO 4217 code of the shop's money.")
    processing_mode: ProcessingMode = ProcessingMode.automatic
    timezone: str = Field(
        default="UTC", description="IANA timezone: campaign windows and days are local to it."
    )
    webhook_secret: str | None = Field(
        default=None,
        min_length=8,
        description="The secret Shopify signs webhooks with; generated when omitted.",
    )


class ShopCreated(BaseModel):
    id: str
    domain: str
    currency: str
    processing_mode: ProcessingMode
    api_key: str = Field(description="The shop's first admin API key. Shown only once.")
    webhook_secret: str
