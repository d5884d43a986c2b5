from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field, WithJsonSchema

from app.core.decimals import decimal_string
from app.core.ids import Id
from app.core.schemas import RequestModel
from app.orders.state import OrderStatus
from app.program.schemas import LINE_REASON

# What `allowed_actions` may list: the review endpoints' names (the frontend's buttons).
# Declared as an enum; `review.allowed_actions` decides which apply.
REVIEW_ACTIONS = ["approve", "reject", "hold", "release", "process"]
ReviewAction = Annotated[str, WithJsonSchema({"type": "string", "enum": REVIEW_ACTIONS})]

AMOUNT = 'Decimal string in the order\'s currency, e.g. `"4.38"`.'


class CustomerHistory(BaseModel):
    orders: int = Field(description="The customer's orders known to the shop.")
    credited_amount: str
    reversed_amount: str
    verified_email: bool | None = Field(
        description="Whether the platform says the customer verified their email; null: "
        "it never said."
    )
    account_state: str | None = Field(
        description="The account's state on the platform (Shopify: `enabled`, `invited`, "
        "`disabled`, `declined`); null: it never said."
    )
    account_problem: str | None = Field(
        description="What keeps the account from good standing (`email not verified`, "
        "`account disabled`…); null when it is in good standing."
    )


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
        "`excluded:<name>`, `gift_card` or `tip`."
    )
    campaigns: list[str] = Field(description="Campaigns that boosted the rate.")
    reason: str | None = Field(description=LINE_REASON)


class OrderPaymentsRead(BaseModel):
    """What gift cards and store credit paid: that part earns no cashback (when the program
    says so). Order webhooks carry no transactions; the amounts are read from Shopify."""

    status: Literal["none", "read", "payload", "waiting", "needs_review"] = Field(
        description="`none`: no gift card or store credit paid; `read`: the amounts come from "
        "Shopify's transactions; `payload`: from the order itself; `waiting`: being read from "
        "Shopify (the order waits, it is not credited on a guess); `needs_review`: they cannot "
        "be read (no Admin API access), so the order is held for a reviewer."
    )
    currency: str = Field(description="ISO 4217 code of the amounts (the order's).")
    credit_gateways: list[str] = Field(description="Its gift card and store credit gateways.")
    paid_with_credit_amount: str | None = Field(description="Null while not known. " + AMOUNT)
    gift_card_amount: str | None = Field(description="As read from Shopify. " + AMOUNT)
    store_credit_amount: str | None = Field(description="As read from Shopify. " + AMOUNT)
    read_at: datetime | None = Field(description="When Shopify's transactions were read.")


class OrderEventRead(BaseModel):
    action: str = Field(
        description="`order.received`, `order.status_changed`, `order.approved`, "
        "`order.rejected`, `order.held`, `order.released`, `order.processed_manually`…"
    )
    from_status: OrderStatus | None
    to_status: OrderStatus | None
    reason: str | None
    actor: str = Field(description="The API key's name, or `system`.")
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
    hold_reasons: list[str] = Field(description="Why a hold rule or a reviewer held the order.")
    review_started_at: datetime | None = Field(description="When it entered pending or held.")
    customer_history: CustomerHistory | None = Field(
        description="The customer's record with the shop, for reviewers."
    )
    version: int = Field(description="Changes with every change of the order (ETag, If-Match).")
    created_at: datetime
    updated_at: datetime
    processed_at: datetime | None


class OrderRead(OrderSummary):
    financial_status: str | None
    test: bool
    eligible_amount: str = Field(description=AMOUNT)
    program_version: int | None = Field(description="Program version it was calculated with.")
    last_error: str | None
    review_note: str | None
    decided_at: datetime | None
    award_amount: str | None = Field(description="Approved amount to credit, when set.")
    award_at: datetime | None = Field(description="When a scheduled order is credited.")
    allowed_actions: list[ReviewAction] = Field(description="Review actions allowed now.")
    payments: OrderPaymentsRead
    lines: list[OrderLineRead]
    history: list[OrderEventRead]


class OrderList(BaseModel):
    items: list[OrderSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at end.")


class OrderCounts(BaseModel):
    counts: dict[OrderStatus, int] = Field(description="Orders per status; zero when absent.")


ADJUSTED = decimal_string("Adjusted amount to credit; the calculated one if omitted.", "4.00")
EXPECTED = decimal_string("The amount you confirmed; omit to get the calculated one first.", "4.38")


class ApproveRequest(RequestModel):
    amount: Annotated[Decimal, ADJUSTED] | None = Field(
        default=None, gt=0, description="Adjusted amount to credit (decimal string)."
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Required when the amount is adjusted."
    )


class ReasonRequest(RequestModel):
    reason: str = Field(min_length=1, max_length=2000)


class ProcessRequest(RequestModel):
    expected_amount: Annotated[Decimal, EXPECTED] | None = Field(
        default=None, ge=0, description="The amount you confirmed (decimal string)."
    )


class ProcessResult(BaseModel):
    processed: bool = Field(description="False: nothing done yet, confirm `calculated_amount`.")
    calculated_amount: str = Field(description=AMOUNT)
    currency: str = Field(description="ISO 4217 code of `calculated_amount` (the order's).")
    order: OrderRead


class BulkApproveRequest(RequestModel):
    ids: list[Id] = Field(min_length=1, max_length=500)
    note: str | None = Field(default=None, max_length=2000)


class BulkRejectRequest(RequestModel):
    ids: list[Id] = Field(min_length=1, max_length=500)
    reason: str = Field(min_length=1, max_length=2000)


class BulkItemResult(BaseModel):
    id: str
    ok: bool
    status: OrderStatus | None = Field(default=None, description="The order's status now.")
    code: str | None = Field(default=None, description="Why not, as a problem `code`.")
    detail: str | None = None


class BulkResult(BaseModel):
    results: list[BulkItemResult]
