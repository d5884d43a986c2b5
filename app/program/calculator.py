"""Cashback calculation: a pure function of an order and a program version, exact to the unit.

Line amounts are exact Decimals; the order total is rounded once with the program's rounding
mode and handed back to the lines by largest remainder, so the lines always sum to the total.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import Decimal

from pydantic import BaseModel, Field

from app.kit.money import Rounding, round_to_minor
from app.orders.domain import PlatformLine, PlatformOrder

_EXACT = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.Inexact])
_HUNDRED = Decimal(100)


class Program(BaseModel):
    """The rules of one program version (the default program of a new shop)."""

    base_rate: Decimal = Field(
        default=Decimal("5"), ge=0, le=100, description="Percent of the eligible amount."
    )
    rounding: Rounding = Rounding.half_up
    exclude_test_orders: bool = True


class Reason:
    gift_card = "gift_card"
    test_order = "test_order"
    nothing_paid = "nothing_paid"
    zero_rate = "zero_rate"


@dataclass(frozen=True, slots=True)
class LineCashback:
    external_id: str
    eligible_amount: int
    rate: Decimal
    cashback_amount: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class Breakdown:
    lines: tuple[LineCashback, ...]
    eligible_amount: int
    cashback_amount: int
    reasons: tuple[str, ...]  # why the order earns nothing, when it earns nothing


def line_eligible_amount(line: PlatformLine) -> int:
    """What the customer paid for the line: price × quantity less its discounts, never below 0."""
    return max(line.unit_price * line.quantity - line.discount_amount, 0)


def _line_reason(line: PlatformLine, eligible: int, rate: Decimal) -> str | None:
    if line.gift_card:
        return Reason.gift_card
    if eligible == 0:
        return Reason.nothing_paid
    if rate == 0:
        return Reason.zero_rate
    return None


def calculate(order: PlatformOrder, program: Program) -> Breakdown:
    if program.exclude_test_orders and order.test:
        lines = tuple(
            LineCashback(line.external_id, 0, Decimal(0), 0, Reason.test_order)
            for line in order.lines
        )
        return Breakdown(lines, 0, 0, (Reason.test_order,))

    rate = program.base_rate
    eligible: list[int] = []
    exact: list[Decimal] = []
    reasons: list[str | None] = []
    for line in order.lines:
        amount = 0 if line.gift_card else line_eligible_amount(line)
        eligible.append(amount)
        exact.append(_EXACT.divide(_EXACT.multiply(Decimal(amount), rate), _HUNDRED))
        reasons.append(_line_reason(line, amount, rate))

    total = round_to_minor(_EXACT.create_decimal(sum(exact, Decimal(0))), program.rounding)
    amounts = allocate(total, exact, [line.external_id for line in order.lines])
    lines = tuple(
        LineCashback(
            line.external_id,
            eligible[i],
            rate if reasons[i] is None else Decimal(0),
            amounts[i],
            reasons[i],
        )
        for i, line in enumerate(order.lines)
    )
    order_reasons: tuple[str, ...] = ()
    if total == 0:
        order_reasons = tuple(sorted({r for r in reasons if r})) or (Reason.nothing_paid,)
    return Breakdown(lines, sum(eligible), total, order_reasons)


def allocate(total: int, exact: list[Decimal], keys: list[str]) -> list[int]:
    """Split `total` over lines in proportion to their exact shares by largest remainder.

    Each line gets the floor of its share; the units left over go to the largest fractional
    parts, ties broken by the line's key, so the result does not depend on line order.
    """
    floors = [int(share) for share in exact]  # shares are never negative: int() is floor
    left = total - sum(floors)
    if left < 0 or left > len(exact):
        # Only a rounding mode that moves the total away from the sum of shares could do this.
        raise ValueError("total does not match the shares it is allocated from")
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), keys[i], i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return floors
