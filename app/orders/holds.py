"""Hold rules: which orders a person should look at before credit, in either mode. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ConfigDict, Field

from app.core.money import format_minor, to_minor
from app.core.schemas import RequestModel
from app.core.snapshots import PlatformLine
from app.program.rules import Amount


class FraudProne(RequestModel):
    """Products whose orders are held: by catalog tag, collection or product type."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(default_factory=list, max_length=200)
    collections: list[str] = Field(default_factory=list, max_length=200)
    product_types: list[str] = Field(default_factory=list, max_length=200)


class HoldRules(RequestModel):
    """An order that trips any rule is `held`, with every reason listed."""

    model_config = ConfigDict(extra="forbid")

    cashback_above: Amount | None = Field(default=None, description="Cashback above this.")
    order_total_above: Amount | None = Field(default=None, description="Order total above this.")
    fraud_prone: FraudProne = Field(default_factory=FraudProne)
    first_order: bool = Field(default=False, description="The customer's first paid order.")
    b2b_orders: bool = Field(default=False, description="Orders placed by a company.")
    customer_daily_orders_above: int | None = Field(
        default=None, ge=0, description="More than this many credited orders in 24 hours."
    )
    customer_daily_cashback_above: Amount | None = Field(
        default=None, description="More than this much cashback in 24 hours."
    )
    unverified_customer: bool = Field(
        default=False,
        description="The customer's account is not in good standing: its email is not "
        "verified, or the account is disabled or declined. A `customers/update` that puts "
        "the account right releases orders held for this alone.",
    )


@dataclass(frozen=True, slots=True)
class HoldFacts:
    currency: str
    cashback_amount: int
    total_amount: int
    lines: Sequence[PlatformLine]  # with catalog facts
    first_order: bool
    b2b: bool
    recent_credited_orders: int  # the customer's, in the last 24 hours, before this one
    recent_cashback: int
    account_problem: str | None = None  # see `account_problem`; None: in good standing


# Shopify's account states that mean the customer cannot (or chose not to) use the account.
BAD_ACCOUNT_STATES = frozenset({"disabled", "declined"})
# Every reason of the `unverified_customer` rule starts with this: a verified account releases
# orders whose reasons all do.
UNVERIFIED_CUSTOMER = "customer account not in good standing"


def account_problem(verified_email: bool | None, state: str | None) -> str | None:
    """What is wrong with the account, or None when it is in good standing (or the platform
    never said: an account is not held for what nobody knows)."""
    problems = []
    if state in BAD_ACCOUNT_STATES:
        problems.append(f"account {state}")
    if verified_email is False:
        problems.append("email not verified")
    return ", ".join(problems) or None


def held_only_for_account(reasons: Sequence[str]) -> bool:
    return bool(reasons) and all(r.startswith(UNVERIFIED_CUSTOMER) for r in reasons)


def _over(limit: Amount | None, value: int, currency: str) -> int | None:
    """The limit in minor units when `value` exceeds it, else None."""
    if limit is None:
        return None
    minor = to_minor(limit, currency)
    return minor if value > minor else None


def hold_reasons(rules: HoldRules, facts: HoldFacts) -> list[str]:
    cur = facts.currency
    reasons: list[str] = []
    if (limit := _over(rules.cashback_above, facts.cashback_amount, cur)) is not None:
        reasons.append(f"cashback above {format_minor(limit, cur)}")
    if (limit := _over(rules.order_total_above, facts.total_amount, cur)) is not None:
        reasons.append(f"order total above {format_minor(limit, cur)}")
    prone = rules.fraud_prone
    flagged: set[str] = set()
    for line in facts.lines:
        flagged |= {f"tag {t}" for t in line.product_tags if t in prone.tags}
        flagged |= {f"collection {c}" for c in line.collections if c in prone.collections}
        if line.product_type and line.product_type in prone.product_types:
            flagged.add(f"product type {line.product_type}")
    reasons += [f"fraud-prone product ({what})" for what in sorted(flagged)]
    if rules.first_order and facts.first_order:
        reasons.append("first order of the customer")
    if rules.b2b_orders and facts.b2b:
        reasons.append("B2B order")
    daily_orders = rules.customer_daily_orders_above
    if daily_orders is not None and facts.recent_credited_orders + 1 > daily_orders:
        reasons.append(f"more than {daily_orders} credited orders for the customer in 24h")
    recent = facts.recent_cashback + facts.cashback_amount
    if (limit := _over(rules.customer_daily_cashback_above, recent, cur)) is not None:
        reasons.append(
            f"more than {format_minor(limit, cur)} cashback for the customer in 24 hours"
        )
    if rules.unverified_customer and facts.account_problem is not None:
        reasons.append(f"{UNVERIFIED_CUSTOMER} ({facts.account_problem})")
    return reasons
