from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from app.core.schemas import RequestModel
from app.program.rules import Program

# A rate as the other answers show it: a plain decimal string (`"10"`, never `"1E+1"`).
PercentString = Annotated[
    Decimal,
    PlainSerializer(lambda value: format(value, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "examples": ["5"]}),
]


LINE_REASON = (
    "Why the line earns nothing, when it earns nothing: `gift_card`, `tip`, `removed` (an order "
    "edit took it off), `paid_with_credit` (paid with gift cards or store credit), `excluded`, "
    "`zero_rate`, `nothing_paid`, `below_minimum` or `test_order`."
)


class ProgramRead(Program):
    version: int = Field(description="Each change makes a new version; orders keep theirs.")
    created_at: datetime


class LineBreakdown(BaseModel):
    external_id: str
    eligible_amount: str = Field(description="Decimal string in the order's currency.")
    rate: PercentString = Field(description='Percent the line earns, e.g. `"5"`.')
    rate_source: str = Field(
        description="What set the rate: `base`, `rule:<name>`, `tier:<name>`, `b2b`, "
        "`excluded:<name>`, `gift_card` or `tip`."
    )
    campaigns: list[str] = Field(description="Campaigns that boosted the rate.")
    cashback_amount: str
    reason: str | None = Field(description=LINE_REASON)


class BreakdownRead(BaseModel):
    program_version: int | None = Field(description="Null for a draft program.")
    currency: str
    eligible_amount: str
    cashback_amount: str
    capped: bool = Field(description="The program's maximum per order cut the amount.")
    reasons: list[str] = Field(description="Why the order earns nothing, when it earns nothing.")
    lines: list[LineBreakdown]


class PreviewRequest(RequestModel):
    order: dict[str, Any] = Field(
        description="A Shopify order, as its webhooks send it (`orders/paid` payload)."
    )
    program: Program | None = Field(
        default=None, description="A draft program to compare with the current one."
    )


class PreviewResponse(BaseModel):
    current: BreakdownRead
    draft: BreakdownRead | None


class SimulationRequest(RequestModel):
    program: Program = Field(description="The draft program to price.")
    date_from: date = Field(description="First day, in the shop's timezone.")
    date_to: date = Field(description="Last day (inclusive), in the shop's timezone.")


class SimulationTotals(BaseModel):
    orders_earning: int = Field(description="Orders that would earn more than zero.")
    cashback_amount: str


class SimulationResult(BaseModel):
    orders: int = Field(description="Paid, not cancelled orders of the range.")
    currency: str
    current: SimulationTotals
    draft: SimulationTotals
    difference: str = Field(description="Draft minus current cashback; negative saves money.")
