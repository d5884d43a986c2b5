import gc
import math
import weakref
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.core.money import Rounding
from app.core.snapshots import PlatformLine, PlatformOrder
from app.program import calculator
from app.program.calculator import Program, Reason, _round, allocate, calculate, compile_program
from app.program.rules import Campaign
from app.shopify.payloads import parse_order
from tests.payloads import paid_order


def order_of(*lines: PlatformLine, currency: str = "USD", test: bool = False) -> PlatformOrder:
    return PlatformOrder("1", currency, tuple(lines), total_amount=0, test=test, paid=True)


def line(ext: str, price: int, qty: int = 1, discount: int = 0, gift: bool = False) -> PlatformLine:
    return PlatformLine(ext, f"item {ext}", qty, price, discount, gift_card=gift)


def test_sample_order_earns_438_split_over_its_lines() -> None:
    breakdown = calculate(parse_order(paid_order(), "orders/paid"), Program())
    assert breakdown.cashback_amount == 438  # 5% of (2 × 40.00 − 8.00) + 15.50, half-up
    assert breakdown.eligible_amount == 8750
    by_line = {lc.external_id: lc for lc in breakdown.lines}
    assert by_line["466157049"].cashback_amount == 360
    assert by_line["703073504"].cashback_amount == 78
    gift = by_line["518995019"]
    assert (gift.cashback_amount, gift.eligible_amount, gift.reason) == (0, 0, Reason.gift_card)


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [(Rounding.half_up, 438), (Rounding.half_even, 438), (Rounding.down, 437)],
)
def test_the_total_is_rounded_once_with_the_program_mode(rounding: Rounding, expected: int) -> None:
    order = order_of(line("a", 7200), line("b", 1550))
    assert calculate(order, Program(rounding=rounding)).cashback_amount == expected


def test_half_even_differs_from_half_up_on_an_exact_half() -> None:
    order = order_of(line("a", 50))  # 5% of 0.50 = 2.5 cents
    assert calculate(order, Program(rounding=Rounding.half_up)).cashback_amount == 3
    assert calculate(order, Program(rounding=Rounding.half_even)).cashback_amount == 2


def test_zero_decimal_and_three_decimal_currencies() -> None:
    jpy = order_of(line("a", 1990, qty=3), currency="JPY")  # 5% of ¥5970 = ¥298.5
    assert calculate(jpy, Program()).cashback_amount == 299
    kwd = order_of(line("a", 12345), currency="KWD")  # 5% of 12.345 KWD = 0.61725
    assert calculate(kwd, Program()).cashback_amount == 617


def test_test_orders_earn_nothing_by_default() -> None:
    breakdown = calculate(order_of(line("a", 10000), test=True), Program())
    assert breakdown.cashback_amount == 0
    assert breakdown.reasons == (Reason.test_order,)
    allowed = calculate(order_of(line("a", 10000), test=True), Program(exclude_test_orders=False))
    assert allowed.cashback_amount == 500


def test_an_order_of_gift_cards_only_says_why_it_earns_nothing() -> None:
    breakdown = calculate(order_of(line("a", 2500, gift=True)), Program())
    assert (breakdown.cashback_amount, breakdown.reasons) == (0, (Reason.gift_card,))


def test_discounts_beyond_the_price_never_go_negative() -> None:
    breakdown = calculate(order_of(line("a", 1000, discount=1500), line("b", 1000)), Program())
    assert [lc.eligible_amount for lc in breakdown.lines] == [0, 1000]
    assert breakdown.cashback_amount == 50


def test_allocation_ties_go_by_line_key_not_position() -> None:
    assert allocate(1, [5, 5], ["b", "a"]) == [0, 1]
    assert allocate(1, [5, 5], ["a", "b"]) == [1, 0]
    assert allocate(7, [0, 3, 0], ["a", "b", "c"]) == [0, 7, 0]


def test_a_unit_left_over_in_an_order_goes_by_line_key_not_position() -> None:
    # Two lines of 0.10 at 5%: half a cent each, one cent in all, and a tie for it.
    breakdown = calculate(order_of(line("b", 10), line("a", 10)), Program())
    assert [(lc.external_id, lc.cashback_amount) for lc in breakdown.lines] == [("b", 0), ("a", 1)]


def test_a_line_that_earns_nothing_adds_exactly_nothing_before_the_rounding() -> None:
    # 12.2221% × 0.9091 = 11.11111111% of 0.09 is 0.9999999999 cent: 0 when rounded down,
    # a gift card beside it or not.
    almost = Campaign(
        name="almost",
        starts_at=datetime(2026, 1, 1),
        ends_at=datetime(2027, 1, 1),
        multiplier=Decimal("0.9091"),
    )
    program = Program(base_rate=Decimal("12.2221"), rounding=Rounding.down, campaigns=[almost])
    placed = datetime(2026, 6, 1, tzinfo=UTC)
    lone = replace(order_of(line("a", 9)), created_at=placed)
    with_gift = replace(order_of(line("a", 9), line("g", 2500, gift=True)), created_at=placed)
    assert calculate(lone, program).cashback_amount == 0
    assert calculate(with_gift, program).cashback_amount == 0


def test_a_program_is_compiled_once_and_not_kept_alive_by_the_cache() -> None:
    program = Program(base_rate=Decimal(7))
    assert compile_program(program) is compile_program(program)
    key, alive = id(program), weakref.ref(program)
    del program
    gc.collect()
    assert alive() is None  # a program read per request must not stay in memory forever
    assert key not in calculator._compiled


@given(
    numerator=st.integers(0, 10**12),
    denominator=st.integers(1, 10**6),
    rounding=st.sampled_from(list(Rounding)),
)
@example(numerator=1, denominator=2, rounding=Rounding.half_up)
@example(numerator=3, denominator=2, rounding=Rounding.half_even)
def test_each_rounding_mode_rounds_any_fraction_by_its_rule(
    numerator: int, denominator: int, rounding: Rounding
) -> None:
    assert_rounded(
        _round(numerator, denominator, rounding), Fraction(numerator, denominator), rounding
    )


lines_strategy = st.lists(
    st.builds(
        line,
        ext=st.uuids().map(str),
        price=st.integers(min_value=0, max_value=10**8),
        qty=st.integers(min_value=1, max_value=50),
        discount=st.integers(min_value=0, max_value=10**8),
        gift=st.booleans(),
    ),
    min_size=1,
    max_size=30,
    unique_by=lambda pl: pl.external_id,
)
# Small orders too: a cent's worth of cashback is where rounding and shares go wrong.
small_lines_strategy = st.lists(
    st.builds(
        line,
        ext=st.uuids().map(str),
        price=st.integers(min_value=0, max_value=5000),
        qty=st.integers(min_value=1, max_value=5),
        discount=st.integers(min_value=0, max_value=500),
        gift=st.booleans(),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda pl: pl.external_id,
)
rates = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)
roundings = st.sampled_from(list(Rounding))


@given(lines=lines_strategy, rate=rates, rounding=roundings)
def test_lines_sum_to_the_total_and_never_go_negative(
    lines: list[PlatformLine], rate: Decimal, rounding: Rounding
) -> None:
    breakdown = calculate(order_of(*lines), Program(base_rate=rate, rounding=rounding))
    assert sum(lc.cashback_amount for lc in breakdown.lines) == breakdown.cashback_amount
    assert all(lc.cashback_amount >= 0 for lc in breakdown.lines)
    assert all(
        lc.cashback_amount == 0
        for lc, pl in zip(breakdown.lines, lines, strict=True)
        if pl.gift_card
    )
    exact = Fraction(sum(lc.eligible_amount for lc in breakdown.lines)) * Fraction(rate) / 100
    assert_rounded(breakdown.cashback_amount, exact, rounding)


def assert_rounded(rounded: int, exact: Fraction, rounding: Rounding) -> None:
    """Rounded once, by the mode's own rule, to the unit: `down` truncates; the half modes
    are at most half a unit off, and a tie goes up (`half_up`) or to the even unit."""
    if rounding == Rounding.down:
        assert 0 <= exact - rounded < 1, (rounded, exact)
        return
    assert abs(exact - rounded) <= Fraction(1, 2), (rounded, exact)
    if exact - math.floor(exact) == Fraction(1, 2):  # a tie
        expected = math.ceil(exact) if rounding == Rounding.half_up else round(exact)
        assert rounded == expected, (rounded, exact, rounding)


@given(
    lines=st.one_of(small_lines_strategy, lines_strategy),
    rate=rates,
    rounding=roundings,
    paid_with_credit=st.one_of(
        st.integers(min_value=0, max_value=6000), st.integers(min_value=0, max_value=10**9)
    ),
    extra=st.integers(min_value=0, max_value=2000),
)
def test_the_part_paid_with_credit_earns_exactly_nothing(
    lines: list[PlatformLine],
    rate: Decimal,
    rounding: Rounding,
    paid_with_credit: int,
    extra: int,
) -> None:
    """The total (lines, plus shipping, tax or tips: `extra`) paid partly with gift cards or
    store credit: every line's base shrinks by the same paid share, and the order earns the
    exact cashback of that share, rounded once."""
    total = sum(pl.unit_price * pl.quantity for pl in lines) + extra
    credit = min(paid_with_credit, total)
    order = replace(order_of(*lines), total_amount=total, paid_with_credit_amount=credit)
    breakdown = calculate(order, Program(base_rate=rate, rounding=rounding))
    bases = calculate(replace(order, paid_with_credit_amount=0), Program(base_rate=rate))
    eligible = sum(lc.eligible_amount for lc in bases.lines)
    paid_share = Fraction(total - credit, total) if total else Fraction(1)
    exact = eligible * paid_share * Fraction(rate) / 100
    assert_rounded(breakdown.cashback_amount, exact, rounding)
    assert sum(lc.cashback_amount for lc in breakdown.lines) == breakdown.cashback_amount
    if total and credit == total:
        assert breakdown.cashback_amount == 0
        assert all(lc.reason is not None for lc in breakdown.lines)


@given(units=st.integers(min_value=0, max_value=10**6), rounding=roundings)
def test_an_exact_half_unit_goes_by_the_mode(units: int, rounding: Rounding) -> None:
    """5% of 10 × (2n + 1) is n + ½ exactly: the tie rule decides."""
    order = order_of(line("a", 10 * (2 * units + 1)))
    rounded = calculate(order, Program(rounding=rounding)).cashback_amount
    expected = {
        Rounding.down: units,
        Rounding.half_up: units + 1,
        Rounding.half_even: units + (units % 2),
    }[rounding]
    assert rounded == expected


@given(lines=lines_strategy, rate=rates, data=st.data())
def test_the_result_does_not_depend_on_line_order(
    lines: list[PlatformLine], rate: Decimal, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(lines))
    first = calculate(order_of(*lines), Program(base_rate=rate))
    second = calculate(order_of(*shuffled), Program(base_rate=rate))
    assert first.cashback_amount == second.cashback_amount
    assert {lc.external_id: lc.cashback_amount for lc in first.lines} == {
        lc.external_id: lc.cashback_amount for lc in second.lines
    }


@given(lines=lines_strategy, low=rates, high=rates, rounding=roundings)
def test_a_higher_rate_never_earns_less(
    lines: list[PlatformLine], low: Decimal, high: Decimal, rounding: Rounding
) -> None:
    low, high = sorted((low, high))
    order = order_of(*lines)
    assert (
        calculate(order, Program(base_rate=low, rounding=rounding)).cashback_amount
        <= calculate(order, Program(base_rate=high, rounding=rounding)).cashback_amount
    )
