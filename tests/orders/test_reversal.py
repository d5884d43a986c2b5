"""The reversal maths, pure: how much credit a refund takes back, line by line and in
proportion, cumulatively, for any sequence of refunds."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from app.orders.reversal import LineState, line_reversals, proportional_reversal, round_half_up


@given(numerator=st.integers(0, 10**12), denominator=st.integers(1, 10**9))
def test_round_half_up_is_the_nearest_unit_ties_up(numerator: int, denominator: int) -> None:
    exact = Fraction(numerator, denominator)
    rounded = round_half_up(numerator, denominator)
    assert -Fraction(1, 2) <= exact - rounded < Fraction(1, 2)  # a tie goes up


@given(whole=st.integers(0, 10**9), denominator=st.integers(1, 10**6))
def test_round_half_up_sends_every_tie_up(whole: int, denominator: int) -> None:
    assert round_half_up(2 * whole * denominator + denominator, 2 * denominator) == whole + 1


def test_round_half_up_on_exact_halves() -> None:
    assert [round_half_up(n, 2) for n in (1, 3, 5)] == [1, 2, 3]
    assert round_half_up(7, 2) == 4 and round_half_up(0, 5) == 0


@given(
    quantity=st.integers(1, 50),
    credit=st.integers(0, 10**7),
    refunds=st.lists(st.integers(0, 60), max_size=12),
)
def test_a_line_gives_back_its_share_cumulatively_and_never_more_than_its_credit(
    quantity: int, credit: int, refunds: list[int]
) -> None:
    refunded = taken = asked = 0
    for extra in refunds:
        asked += max(extra, 0)
        state = LineState("line", quantity, credit, refunded, taken)
        result = line_reversals([state], {"line": extra})
        if extra <= 0:
            assert result == {}
            continue
        refunded, now = result["line"]
        assert now >= 0
        taken += now
        # Cumulatively exactly round(credit × refunded / quantity), whatever the steps.
        assert taken == round_half_up(credit * refunded, quantity)
        assert refunded == min(quantity, asked)
    assert taken <= credit
    if sum(refunds) >= quantity:
        assert taken == credit  # a full refund takes back exactly the credit


@given(quantity=st.integers(1, 50), credit=st.integers(0, 10**7), data=st.data())
def test_lines_not_refunded_give_nothing_back(
    quantity: int, credit: int, data: st.DataObject
) -> None:
    other = LineState("other", quantity, credit, 0, 0)
    mine = LineState("mine", quantity, credit, 0, 0)
    extra = data.draw(st.integers(1, quantity))
    result = line_reversals([other, mine], {"mine": extra})
    assert set(result) == {"mine"}


@given(
    credit=st.integers(0, 10**7),
    eligible=st.integers(0, 10**8),
    refunds=st.lists(st.integers(0, 10**8), max_size=12),
)
def test_money_refunded_without_lines_takes_back_in_proportion_cumulatively(
    credit: int, eligible: int, refunds: list[int]
) -> None:
    refunded = taken = 0
    for now in refunds:
        step = proportional_reversal(credit, eligible, refunded, now, taken)
        assert step >= 0
        if eligible <= 0 or now <= 0:
            assert step == 0
            continue
        refunded += now
        taken += step
        assert taken == round_half_up(credit * min(refunded, eligible), eligible)
    assert taken <= credit
    if eligible > 0 and refunded >= eligible:
        assert taken == credit


def test_a_line_whose_quantity_was_edited_to_zero_gives_nothing_back() -> None:
    assert line_reversals([LineState("gone", 0, 0, 0, 0)], {"gone": 1}) == {}


def test_the_smallest_amounts_refunded_without_lines_take_back_their_share() -> None:
    assert proportional_reversal(10000, 10000, 0, 1, 0) == 1  # one cent of 100.00 at 100%
    assert proportional_reversal(1, 1, 0, 1, 0) == 1  # one cent eligible, all refunded


def test_nothing_refunded_now_takes_nothing_back_now() -> None:
    # An earlier refund took back less than its share (say the credit had been spent): an
    # event refunding nothing does not take the rest.
    assert proportional_reversal(100, 100, 50, 0, 0) == 0
