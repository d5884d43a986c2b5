from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.ledger.models import EntryKind


class CustomerRead(BaseModel):
    id: str
    external_id: str = Field(description="The platform's customer id.")
    email: str | None
    first_name: str | None
    last_name: str | None
    balance: str = Field(description='Sum of the customer\'s ledger entries, e.g. `"4.38"`.')
    currency: str = Field(description="ISO 4217 code of the balance.")
    created_at: datetime


class LedgerEntryRead(BaseModel):
    id: str
    kind: EntryKind
    amount: str = Field(description="Signed decimal string: credits positive, reversals negative.")
    currency: str
    order_id: str | None
    reverses_entry_id: str | None
    description: str | None
    created_at: datetime


class LedgerEntryList(BaseModel):
    items: list[LedgerEntryRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


class StorefrontCashback(BaseModel):
    kind: EntryKind
    amount: str = Field(description="Signed decimal string: credits positive, reversals negative.")
    order_name: str | None = Field(description='The order it came from, e.g. `"#1042"`.')
    created_at: datetime


class StorefrontBalance(BaseModel):
    """What a logged-in customer sees on the storefront (through the Shopify App Proxy)."""

    logged_in: bool = Field(description="False when the request names no logged-in customer.")
    balance: str | None = Field(description='The customer\'s cashback balance, e.g. `"4.38"`.')
    currency: str
    recent: list[StorefrontCashback] = Field(description="Latest cashback movements, newest first.")
