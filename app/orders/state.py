"""The order state machine: every status change in the service goes through `check_transition`."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    received = "received"
    awaiting_payment = "awaiting_payment"
    awaiting_customer = "awaiting_customer"
    not_eligible = "not_eligible"
    pending = "pending"
    held = "held"
    scheduled = "scheduled"
    processed = "processed"
    rejected = "rejected"
    partially_reversed = "partially_reversed"
    reversed = "reversed"
    failed = "failed"


S = OrderStatus

# Where evaluation may send an order that has not been decided yet.
_EVALUATION_OUTCOMES = frozenset(
    {
        S.received,
        S.awaiting_payment,
        S.awaiting_customer,
        S.not_eligible,
        S.pending,
        S.held,
        S.scheduled,
        S.processed,
        S.rejected,
        S.failed,
    }
)

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.received: _EVALUATION_OUTCOMES,
    S.awaiting_payment: _EVALUATION_OUTCOMES,
    S.awaiting_customer: _EVALUATION_OUTCOMES,
    # An edited order may become eligible again; nothing was credited yet.
    S.not_eligible: _EVALUATION_OUTCOMES,
    S.failed: _EVALUATION_OUTCOMES,
    S.pending: frozenset({S.held, S.scheduled, S.processed, S.rejected, S.failed}),
    # Released orders go back through evaluation.
    S.held: _EVALUATION_OUTCOMES,
    S.scheduled: frozenset({S.processed, S.rejected, S.failed, S.held}),
    S.processed: frozenset({S.partially_reversed, S.reversed}),
    S.partially_reversed: frozenset({S.partially_reversed, S.reversed}),
    S.rejected: frozenset(),
    S.reversed: frozenset(),
}

# Statuses whose order has not been decided: a newer snapshot of the order may re-evaluate it.
UNDECIDED = frozenset(
    {S.received, S.awaiting_payment, S.awaiting_customer, S.not_eligible, S.failed}
)
# Statuses in which credit has been issued to the customer.
CREDITED = frozenset({S.processed, S.partially_reversed, S.reversed})
# Statuses decided but not credited yet: a refund or an edit reduces what will be credited.
REDUCIBLE = frozenset({S.pending, S.held, S.scheduled})
# Statuses in which a person reviews the order.
REVIEW = frozenset({S.pending, S.held})


class InvalidTransition(Exception):
    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"an order cannot go from {current} to {target}")
        self.current = current
        self.target = target


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def check_transition(current: OrderStatus, target: OrderStatus) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)
