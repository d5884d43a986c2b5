"""Whole breakdowns, field by field: what the order page shows for each line ("why this
amount") must be exactly what the calculation decided, for every kind of line that earns
nothing, the shipping line, the minimum, the cap and credit payments still unknown."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from app.core.snapshots import PlatformLine, PlatformOrder
from app.program.calculator import SHIPPING_LINE_ID, Breakdown, LineCashback, Reason, calculate
from app.program.rules import Campaign, MatchField, ProductRule, Program

SHOE = PlatformLine("shoe", "Shoe", 2, 4000, 800, product_id="p1", vendor="Northpeak")
SOCKS = PlatformLine("socks", "Socks", 1, 1550, 0, product_id="p2", vendor="Woolworks")


def order(*lines: PlatformLine, **fields: object) -> PlatformOrder:
    total = sum(li.unit_price * li.quantity - li.discount_amount for li in lines)
    return PlatformOrder("o1", "USD", lines, total_amount=total, paid=True, **fields)  # type: ignore[arg-type]


def test_a_test_order_earns_nothing_on_any_line_and_says_so() -> None:
    breakdown = calculate(order(SHOE, SOCKS, test=True), Program())
    nothing = [
        LineCashback(e, 0, Decimal(0), 0, Reason.test_order, "base") for e in ("shoe", "socks")
    ]
    assert breakdown == Breakdown(tuple(nothing), 0, 0, (Reason.test_order,))


def test_every_line_that_earns_nothing_says_why_with_rate_zero_and_no_campaign() -> None:
    removed = replace(SOCKS, external_id="edited", quantity=0, removed_quantity=1)
    free = PlatformLine("free", "Free sample", 1, 0, 0)
    zero = PlatformLine("zero", "Zero-rated", 1, 1000, 0, vendor="Cheap")
    excluded = PlatformLine("excluded", "Excluded", 1, 1000, 0, vendor="Banned")
    program = Program(
        rules=[
            ProductRule(name="no", field=MatchField.vendor, value="Banned", exclude=True),
            ProductRule(name="zero", field=MatchField.vendor, value="Cheap", rate=Decimal(0)),
        ],
        campaigns=[
            Campaign(
                name="all",
                starts_at=datetime(2026, 1, 1),
                ends_at=datetime(2027, 1, 1),
                multiplier=Decimal(2),
            )
        ],
    )
    placed = datetime.fromisoformat("2026-11-20T10:00:00+00:00")
    breakdown = calculate(order(SHOE, removed, free, zero, excluded, created_at=placed), program)
    by_line = {line.external_id: line for line in breakdown.lines}
    # Shoes: 72.00 at 5% × 2 (the campaign) = 7.20; nothing else earns.
    assert by_line["shoe"] == LineCashback("shoe", 7200, Decimal(10), 720, None, "base", ("all",))
    assert by_line["edited"] == LineCashback("edited", 0, Decimal(0), 0, Reason.removed, "base")
    assert by_line["free"] == LineCashback("free", 0, Decimal(0), 0, Reason.nothing_paid, "base")
    assert by_line["zero"] == LineCashback(
        "zero", 1000, Decimal(0), 0, Reason.zero_rate, "rule:zero"
    )
    assert by_line["excluded"] == LineCashback(
        "excluded", 1000, Decimal(0), 0, Reason.excluded, "excluded:no"
    )
    assert (breakdown.eligible_amount, breakdown.cashback_amount) == (7200, 720)
    assert (breakdown.reasons, breakdown.capped, breakdown.credit_payments_unknown) == (
        (),
        False,
        False,
    )


def test_an_order_earning_nothing_lists_every_reason_once_sorted() -> None:
    tip = PlatformLine("tip", "Tip", 1, 500, 0, tip=True)
    gift = PlatformLine("gift", "Gift card", 1, 2500, 0, gift_card=True)
    breakdown = calculate(order(tip, gift, tip), Program())
    assert breakdown.reasons == (Reason.gift_card, Reason.tip)
    assert breakdown.cashback_amount == 0
    assert breakdown.lines[:2] == (
        LineCashback("tip", 0, Decimal(0), 0, Reason.tip, "tip"),
        LineCashback("gift", 0, Decimal(0), 0, Reason.gift_card, "gift_card"),
    )


def test_below_the_minimum_is_the_one_reason_given_and_only_when_it_is_the_reason() -> None:
    gift = PlatformLine("gift", "Gift card", 1, 2500, 0, gift_card=True)
    program = Program(minimum_eligible_amount=Decimal("20.00"))
    below = calculate(order(SOCKS, gift), program)
    assert (below.cashback_amount, below.reasons) == (0, (Reason.below_minimum,))
    assert [line.reason for line in below.lines] == [Reason.below_minimum, Reason.gift_card]
    # Gift cards alone earn nothing for being gift cards, whatever the minimum.
    assert calculate(order(gift), program).reasons == (Reason.gift_card,)


def test_shipping_counted_is_a_line_of_its_own() -> None:
    breakdown = calculate(
        order(SOCKS, shipping_amount=500), Program(include_shipping=True, base_rate=Decimal(10))
    )
    shipping = breakdown.lines[-1]
    assert shipping == LineCashback(SHIPPING_LINE_ID, 500, Decimal(10), 50, None, "base")
    assert breakdown.cashback_amount == 155 + 50  # 10% of 15.50 and of 5.00
    free_shipping = calculate(order(SOCKS, shipping_amount=0), Program(include_shipping=True))
    assert [line.external_id for line in free_shipping.lines] == ["socks"]  # no empty line
    one_cent = calculate(order(SOCKS, shipping_amount=1), Program(include_shipping=True))
    assert [line.external_id for line in one_cent.lines] == ["socks", SHIPPING_LINE_ID]


def test_the_minimum_is_met_at_the_amount_and_missed_below_it() -> None:
    at = calculate(order(SOCKS), Program(minimum_eligible_amount=Decimal("15.50")))
    assert at.cashback_amount == 78
    below = calculate(order(SOCKS), Program(minimum_eligible_amount=Decimal("15.51")))
    assert (below.cashback_amount, below.reasons) == (0, (Reason.below_minimum,))
    assert below.lines[0].reason == Reason.below_minimum
    assert below.lines[0].eligible_amount == 1550  # still shown, though it earns nothing


def test_the_minimum_is_read_on_what_credit_did_not_pay() -> None:
    half_credit = order(SOCKS, paid_with_credit_amount=775)
    program = Program(minimum_eligible_amount=Decimal("10.00"))
    breakdown = calculate(half_credit, program)  # 15.50 × ½ = 7.75 eligible: below 10.00
    assert (breakdown.eligible_amount, breakdown.reasons) == (775, (Reason.below_minimum,))
    assert calculate(order(SOCKS), program).cashback_amount == 78
    met = calculate(half_credit, Program(minimum_eligible_amount=Decimal("7.75")))
    assert (met.eligible_amount, met.cashback_amount, met.reasons) == (775, 39, ())


def test_an_order_of_one_cent_paid_with_credit_earns_nothing_for_that() -> None:
    pin = PlatformLine("pin", "Pin", 1, 1, 0)
    breakdown = calculate(order(pin, paid_with_credit_amount=1), Program(base_rate=Decimal(100)))
    assert (breakdown.cashback_amount, breakdown.reasons) == (0, (Reason.paid_with_credit,))


def test_an_order_whose_total_is_zero_ignores_a_credit_payment_on_record() -> None:
    # Fully discounted, yet a credit payment on record: nothing to scale, nothing earned.
    free = PlatformLine("free", "Free", 1, 1550, 1550)
    breakdown = calculate(order(free, paid_with_credit_amount=500), Program())
    assert (breakdown.cashback_amount, breakdown.reasons) == (0, (Reason.nothing_paid,))
    assert breakdown.lines[0].eligible_amount == 0


def test_a_cap_applies_only_above_it() -> None:
    at_cap = calculate(order(SHOE, SOCKS), Program(maximum_cashback_per_order=Decimal("4.38")))
    assert (at_cap.cashback_amount, at_cap.capped) == (438, False)
    capped = calculate(order(SHOE, SOCKS), Program(maximum_cashback_per_order=Decimal("4.37")))
    assert (capped.cashback_amount, capped.capped) == (437, True)
    assert sum(line.cashback_amount for line in capped.lines) == 437


def test_credit_payments_still_unknown_are_flagged_only_when_the_program_excludes_them() -> None:
    unknown = order(SHOE, SOCKS, paid_with_credit_amount=None)
    assert calculate(unknown, Program()).credit_payments_unknown is True
    assert calculate(unknown, Program()).cashback_amount == 438  # an upper bound, flagged
    ignored = calculate(unknown, Program(exclude_credit_payments=False))
    assert ignored.credit_payments_unknown is False
    known = calculate(order(SHOE, SOCKS, paid_with_credit_amount=0), Program())
    assert known.credit_payments_unknown is False


def test_eligible_amounts_are_whole_minor_units_of_the_paid_share() -> None:
    # 15.50 of which a third was paid with credit: 10.333… is shown as 10.33, not a fraction.
    third = replace(order(SOCKS), total_amount=1500, paid_with_credit_amount=500)
    breakdown = calculate(third, Program())
    assert breakdown.lines[0].eligible_amount == 1033
    assert isinstance(breakdown.lines[0].eligible_amount, int)
    assert breakdown.eligible_amount == 1033
