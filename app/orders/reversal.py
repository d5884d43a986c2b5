"""How much credit a refund takes back. Pure integer maths, no I/O.

Per line, the amount taken back so far is `round(line credit × refunded qty / qty)`
(half up), so a full refund takes back exactly the line's credit and partial refunds never
drift past it. Money refunded without lines takes back in proportion to the eligible amount.
"""

from __future__ import annotations

from dataclasses import dataclass


def round_half_up(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    return quotient + (2 * remainder >= denominator)


@dataclass(frozen=True, slots=True)
class LineState:
    external_id: str
    quantity: int
    credit: int  # the line's share of the order's credit (or cashback, before credit)
    refunded_quantity: int  # before this refund
    reversed_amount: int  # taken back so far


def line_reversals(lines: list[LineState], refunded: dict[str, int]) -> dict[str, tuple[int, int]]:
    """For each refunded line: (new refunded quantity, amount to take back now)."""
    result: dict[str, tuple[int, int]] = {}
    for line in lines:
        extra = refunded.get(line.external_id, 0)
        if extra <= 0 or line.quantity <= 0:
            continue
        quantity = min(line.quantity, line.refunded_quantity + extra)
        target = round_half_up(line.credit * quantity, line.quantity)
        result[line.external_id] = (quantity, max(target - line.reversed_amount, 0))
    return result


def proportional_reversal(
    credit: int, eligible: int, refunded_before: int, refunded_now: int, reversed_before: int
) -> int:
    """Take back in proportion to the eligible amount refunded without lines, cumulatively."""
    if eligible <= 0 or refunded_now <= 0:
        return 0
    cumulative = min(refunded_before + refunded_now, eligible)
    target = round_half_up(credit * cumulative, eligible)
    return max(target - reversed_before, 0)
