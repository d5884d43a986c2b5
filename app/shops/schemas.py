from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.core.schemas import RequestModel
from app.shops.models import ApiKeyRole, ProcessingMode


class ShopCreate(RequestModel):
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


class ApiKeyCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100, description="Who uses it, e.g. `Ana`.")
    role: ApiKeyRole = Field(
        description="`admin`: settings, program, keys and all below; `reviewer`: review "
        "actions and reads; `viewer`: reads."
    )


class ApiKeyRead(BaseModel):
    id: str
    name: str
    role: ApiKeyRole
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    api_key: str = Field(description="The key itself. Shown only once.")


class ApiKeyList(BaseModel):
    items: list[ApiKeyRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")
