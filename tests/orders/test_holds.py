"""Hold rules, pure: each rule holds exactly the orders past it, and every reason is listed."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.core.snapshots import PlatformLine
from app.orders.holds import (
    FraudProne,
    HoldFacts,
    HoldRules,
    account_problem,
    held_only_for_account,
    hold_reasons,
)

SHOE = PlatformLine(
    "1", "Shoe", 1, 4000, 0, product_type="Shoes", product_tags=("sale",), collections=("new",)
)
FACTS = HoldFacts(
    currency="USD",
    cashback_amount=438,
    total_amount=12470,
    lines=(SHOE,),
    first_order=False,
    b2b=False,
    recent_credited_orders=0,
    recent_cashback=0,
)


def test_no_rules_hold_nothing() -> None:
    assert hold_reasons(HoldRules(), FACTS) == []


@pytest.mark.parametrize(
    ("rules", "facts", "reason"),
    [
        (HoldRules(cashback_above=Decimal("4.37")), FACTS, "cashback above 4.37"),
        (HoldRules(order_total_above=Decimal("124.69")), FACTS, "order total above 124.69"),
        (HoldRules(fraud_prone=FraudProne(tags=["sale"])), FACTS, "fraud-prone product (tag sale)"),
        (
            HoldRules(fraud_prone=FraudProne(collections=["new"])),
            FACTS,
            "fraud-prone product (collection new)",
        ),
        (
            HoldRules(fraud_prone=FraudProne(product_types=["Shoes"])),
            FACTS,
            "fraud-prone product (product type Shoes)",
        ),
        (
            HoldRules(first_order=True),
            replace(FACTS, first_order=True),
            "first order of the customer",
        ),
        (HoldRules(b2b_orders=True), replace(FACTS, b2b=True), "B2B order"),
        (
            HoldRules(customer_daily_orders_above=2),
            replace(FACTS, recent_credited_orders=2),
            "more than 2 credited orders for the customer in 24h",
        ),
        (
            HoldRules(customer_daily_cashback_above=Decimal("10.00")),
            replace(FACTS, recent_cashback=563),
            "more than 10.00 cashback for the customer in 24 hours",
        ),
        (
            HoldRules(unverified_customer=True),
            replace(FACTS, account_problem="email not verified"),
            "customer account not in good standing (email not verified)",
        ),
    ],
)
def test_each_rule_holds_just_past_its_limit(
    rules: HoldRules, facts: HoldFacts, reason: str
) -> None:
    assert hold_reasons(rules, facts) == [reason]


def test_at_a_limit_nothing_is_held() -> None:
    rules = HoldRules(
        cashback_above=Decimal("4.38"),
        order_total_above=Decimal("124.70"),
        customer_daily_orders_above=1,
        customer_daily_cashback_above=Decimal("4.38"),
        fraud_prone=FraudProne(tags=["other"]),
        first_order=True,
        b2b_orders=True,
        unverified_customer=True,
    )
    assert hold_reasons(rules, FACTS) == []


@given(
    cashback=st.integers(0, 10**6),
    limit=st.integers(0, 10**6),
    recent=st.integers(0, 10**6),
    daily=st.integers(0, 10**6),
)
def test_a_limit_holds_exactly_the_amounts_above_it(
    cashback: int, limit: int, recent: int, daily: int
) -> None:
    rules = HoldRules(
        cashback_above=Decimal(limit) / 100, customer_daily_cashback_above=Decimal(daily) / 100
    )
    reasons = hold_reasons(rules, replace(FACTS, cashback_amount=cashback, recent_cashback=recent))
    assert any(r.startswith("cashback above") for r in reasons) == (cashback > limit)
    assert any(r.startswith("more than") for r in reasons) == (recent + cashback > daily)


def test_every_tripped_rule_is_listed_in_a_stable_order() -> None:
    rules = HoldRules(
        cashback_above=Decimal("1"), first_order=True, fraud_prone=FraudProne(tags=["sale"])
    )
    assert hold_reasons(rules, replace(FACTS, first_order=True)) == [
        "cashback above 1.00",
        "fraud-prone product (tag sale)",
        "first order of the customer",
    ]


def test_fraud_prone_products_are_found_on_every_line_of_the_order() -> None:
    plain = PlatformLine("2", "Socks", 1, 1000, 0, product_tags=("basics",))
    rules = HoldRules(fraud_prone=FraudProne(tags=["sale"], collections=["new"]))
    expected = ["fraud-prone product (collection new)", "fraud-prone product (tag sale)"]
    assert hold_reasons(rules, replace(FACTS, lines=(SHOE, plain))) == expected
    assert hold_reasons(rules, replace(FACTS, lines=(plain, SHOE))) == expected


def test_account_problems_and_releasing_only_what_they_alone_held() -> None:
    assert account_problem(None, None) is None  # nobody said: not held for it
    assert account_problem(True, "enabled") is None
    assert account_problem(False, "disabled") == "account disabled, email not verified"
    assert held_only_for_account(["customer account not in good standing (account declined)"])
    assert not held_only_for_account([])
    assert not held_only_for_account(
        ["customer account not in good standing (account declined)", "B2B order"]
    )
