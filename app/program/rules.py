"""The merchant's cashback program: the rules one program version holds.

How a line's rate is chosen (first that applies wins):
1. an exclusion rule matching the line: the line earns nothing (exclusions always win; the
   one named is chosen as a rate rule is in 2);
2. the most specific matching rate rule: variant > product > SKU > collection > tag >
   product type > vendor; among equally specific rules the higher `priority`, then the
   first listed;
3. the B2B rate, for an order placed by a company;
4. the best customer tier the customer is in (by customer tag; the highest rate wins);
5. the base rate.
Then every campaign active when the order was placed (in the shop's timezone) whose scope
matches the line adjusts the rate: `rate × multiplier + bonus_points`, capped at 100%.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Self

from pydantic import ConfigDict, Field, model_validator

from app.core.decimals import decimal_string
from app.core.money import Rounding
from app.core.schemas import RequestModel

Percent = Annotated[
    Decimal,
    Field(ge=0, le=100, max_digits=7, decimal_places=4),
    decimal_string("Percent, 0 to 100, at most 4 decimals.", "5"),
]
Amount = Annotated[
    Decimal,
    Field(ge=0, max_digits=18, decimal_places=4),
    decimal_string('In the shop\'s currency, e.g. `"25.00"`.', "25.00"),
]
Name = Annotated[str, Field(min_length=1, max_length=120)]


class MatchField(StrEnum):
    variant_id = "variant_id"
    product_id = "product_id"
    sku = "sku"
    collection = "collection"
    tag = "tag"
    product_type = "product_type"
    vendor = "vendor"


# Most specific first: a rule on a variant beats one on its product, and so on.
SPECIFICITY: tuple[MatchField, ...] = tuple(MatchField)


class _Strict(RequestModel):
    model_config = ConfigDict(extra="forbid")


class ProductRule(_Strict):
    """A rate override or an exclusion for the lines it matches."""

    name: Name
    field: MatchField = Field(description="What the rule matches on.")
    value: str = Field(min_length=1, max_length=255, description="The id, SKU, tag… to match.")
    rate: Percent | None = Field(default=None, description="The line's rate; omit to exclude.")
    exclude: bool = Field(default=False, description="The matched lines earn nothing.")
    priority: int = Field(default=0, description="Breaks ties between equally specific rules.")

    @model_validator(mode="after")
    def _rate_or_exclusion(self) -> Self:
        if self.exclude == (self.rate is not None):
            raise ValueError("a rule either sets a `rate` or has `exclude: true`, not both")
        return self


class Tier(_Strict):
    """A customer tier: customers with the tag earn `rate` instead of the base rate."""

    name: Name
    customer_tag: str = Field(min_length=1, max_length=255)
    rate: Percent


class CampaignScope(_Strict):
    field: MatchField
    value: str = Field(min_length=1, max_length=255)


class Campaign(_Strict):
    """A time-boxed boost, e.g. double cashback for a weekend or +2 points on a collection."""

    name: Name
    starts_at: datetime = Field(description="Local time in the shop's timezone, no offset.")
    ends_at: datetime = Field(description="Exclusive; local time in the shop's timezone.")
    multiplier: Annotated[Decimal, decimal_string("Multiplies the rate.", "2")] = Field(
        default=Decimal(1), ge=0, le=100, decimal_places=4
    )
    bonus_points: Annotated[Decimal, decimal_string("Percent points added.", "1.5")] = Field(
        default=Decimal(0), ge=0, le=100, decimal_places=4
    )
    scope: CampaignScope | None = Field(default=None, description="Which lines; all if omitted.")

    @model_validator(mode="after")
    def _window(self) -> Self:
        if self.starts_at.tzinfo is not None or self.ends_at.tzinfo is not None:
            raise ValueError("campaign times are local to the shop's timezone: give no offset")
        if self.ends_at <= self.starts_at:
            raise ValueError("`ends_at` must be after `starts_at`")
        return self


class Program(_Strict):
    """One version of a shop's cashback program. A new shop starts with the defaults."""

    base_rate: Percent = Decimal(5)
    rounding: Rounding = Field(
        default=Rounding.half_up, description="How the order's total is rounded, once."
    )
    minimum_eligible_amount: Amount | None = Field(
        default=None, description="Orders whose eligible amount is below this earn nothing."
    )
    maximum_cashback_per_order: Amount | None = Field(
        default=None, description="Cashback of one order never exceeds this."
    )
    include_shipping: bool = False
    include_tax: bool = False
    subtract_discounts: bool = True
    exclude_test_orders: bool = True
    exclude_credit_payments: bool = Field(
        default=True,
        description="The part of an order paid with gift cards or store credit earns nothing.",
    )
    b2b_rate: Percent | None = Field(default=None, description="Rate for orders of companies.")
    rules: list[ProductRule] = Field(default_factory=list, max_length=1000)
    tiers: list[Tier] = Field(default_factory=list, max_length=100)
    campaigns: list[Campaign] = Field(default_factory=list, max_length=100)
    credit_expiry_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Credit expires at the end of the shop's local day this many days after it "
        "is credited; none: it never expires. Credits keep the expiry they were given.",
    )
    reminder_days_before: list[Annotated[int, Field(ge=1, le=365)]] = Field(
        default_factory=list,
        max_length=5,
        description="Days before a credit expires to remind the customer "
        "(`cashback.expiring`), e.g. `[7, 1]`.",
    )

    @model_validator(mode="after")
    def _distinct_reminders(self) -> Self:
        if len(set(self.reminder_days_before)) != len(self.reminder_days_before):
            raise ValueError("`reminder_days_before` lists a day twice")
        return self
