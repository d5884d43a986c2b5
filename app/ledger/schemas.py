from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field

from app.core.decimals import decimal_string
from app.core.schemas import RequestModel
from app.ledger.models import EntryKind


class ExpiringCredit(BaseModel):
    amount: str = Field(description='What is left of the credit that expires first, e.g. `"4.38"`.')
    expires_at: datetime = Field(description="The end of that day in the shop's timezone.")


class CustomerRead(BaseModel):
    id: str
    external_id: str = Field(description="The platform's customer id.")
    email: str | None
    first_name: str | None
    last_name: str | None
    balance: str = Field(description='Sum of the customer\'s ledger entries, e.g. `"4.38"`.')
    currency: str = Field(description="ISO 4217 code of the balance.")
    expiring_soon: ExpiringCredit | None = Field(
        description="The credit that expires next, within 30 days: what is left of the "
        "credits expiring that day, and when; null when none does."
    )
    created_at: datetime


class LedgerEntryRead(BaseModel):
    id: str
    kind: EntryKind
    amount: str = Field(
        description="Signed decimal string: credits positive; reversals, expiries and "
        "redemptions negative."
    )
    currency: str
    order_id: str | None
    reverses_entry_id: str | None = Field(
        description="The credit a reversal, expiry or redemption takes from."
    )
    expires_at: datetime | None = Field(
        description="A credit's expiry (the end of that day in the shop's timezone); null: "
        "it never expires."
    )
    redemption_id: str | None = Field(description="The redemption a redemption entry is part of.")
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


class RedemptionRequest(RequestModel):
    amount: Annotated[Decimal, decimal_string("What the customer spends.", "2.50")] = Field(
        gt=0, max_digits=18
    )
    reference: str = Field(
        min_length=1,
        max_length=255,
        description="Your reference for the spend (a receipt, an order): one redemption each; "
        "the same reference again answers the first redemption.",
    )


class RedeemedCredit(BaseModel):
    credit_entry_id: str = Field(description="The credit it spent from.")
    amount: str


class RedemptionRead(BaseModel):
    id: str
    customer_id: str
    reference: str
    amount: str
    currency: str
    balance: str = Field(description="The customer's balance after it.")
    spent: list[RedeemedCredit] = Field(description="The credits it spent, soonest-expiring first.")
    created_at: datetime
