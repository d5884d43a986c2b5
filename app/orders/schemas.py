from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.orders.state import OrderStatus

AMOUNT = 'Decimal string in the order\'s currency, e.g. `"4.38"`.'


class OrderLineRead(BaseModel):
    external_id: str = Field(description="The platform's line item id.")
    title: str
    product_id: str | None
    variant_id: str | None
    sku: str | None
    quantity: int
    unit_price: str = Field(description=AMOUNT)
    discount_amount: str = Field(description=AMOUNT)
    gift_card: bool
    eligible_amount: str = Field(description="What the line contributes to cashback. " + AMOUNT)
    rate: str = Field(description='Percent of the eligible amount, e.g. `"5"`.')
    cashback_amount: str = Field(description=AMOUNT)
    rate_source: str = Field(
        description="What set the rate: `base`, `rule:<name>`, `tier:<name>`, `b2b`, "
        "`excluded:<name>` or `gift_card`."
    )
    campaigns: list[str] = Field(description="Campaigns that boosted the rate.")
    reason: str | None = Field(description="Why the line earns nothing, when it earns nothing.")


class StatusChangeRead(BaseModel):
    from_status: OrderStatus | None
    to_status: OrderStatus
    reason: str | None
    actor: str
    at: datetime


class OrderSummary(BaseModel):
    id: str
    external_id: str = Field(description="The platform's order id.")
    name: str | None = Field(description="The order's name in the store, e.g. `#1042`.")
    status: OrderStatus
    status_reason: str | None
    currency: str = Field(description="ISO 4217 code of every amount of the order.")
    total_amount: str = Field(description=AMOUNT)
    cashback_amount: str = Field(description="Calculated cashback. " + AMOUNT)
    credited_amount: str = Field(description="Credit issued to the customer. " + AMOUNT)
    reversed_amount: str = Field(description="Credit taken back. " + AMOUNT)
    customer_id: str | None
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None


class OrderRead(OrderSummary):
    financial_status: str | None
    test: bool
    eligible_amount: str = Field(description=AMOUNT)
    program_version: int | None = Field(description="Program version it was calculated with.")
    last_error: str | None
    version: int
    lines: list[OrderLineRead]
    history: list[StatusChangeRead]


class OrderList(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")
