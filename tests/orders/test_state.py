import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.orders.state import (
    CREDITED,
    TRANSITIONS,
    UNDECIDED,
    InvalidTransition,
    OrderStatus,
    can_transition,
    check_transition,
)

S = OrderStatus


def test_every_status_has_its_transitions_declared() -> None:
    assert set(TRANSITIONS) == set(OrderStatus)


@pytest.mark.parametrize("terminal", [S.rejected, S.reversed])
def test_terminal_statuses_go_nowhere(terminal: OrderStatus) -> None:
    assert all(not can_transition(terminal, target) for target in OrderStatus)


def test_an_illegal_move_names_both_statuses() -> None:
    with pytest.raises(InvalidTransition, match="from processed to pending") as refused:
        check_transition(S.processed, S.pending)
    assert (refused.value.current, refused.value.target) == (S.processed, S.pending)
    assert str(refused.value) == "an order cannot go from processed to pending"


def test_every_declared_move_is_allowed_and_every_other_refused() -> None:
    for current in OrderStatus:
        for target in OrderStatus:
            if target in TRANSITIONS[current]:
                check_transition(current, target)  # allowed: no error
            else:
                with pytest.raises(InvalidTransition):
                    check_transition(current, target)


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=40))
def test_credit_once_given_is_never_undone_except_by_reversal(steps: list[OrderStatus]) -> None:
    """Walk any sequence of requested moves, taking the legal ones: once an order is credited
    it stays among the credited statuses, and nothing leads back to an undecided status."""
    status = S.received
    for target in steps:
        was_credited = status in CREDITED
        if can_transition(status, target):
            status = target
        if was_credited:
            assert status in CREDITED
            assert status not in UNDECIDED
