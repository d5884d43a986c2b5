"""Cashback calculation: a pure function of an order and a program version, exact to the unit.

Every line's exact cashback is an integer numerator over one common denominator (rates are
scaled to integers), so nothing is ever rounded until the order total is rounded, once, with
the program's rounding mode. That total (after the minimum and the cap) is handed back to the
lines in proportion to their exact shares by largest remainder, so the lines always sum to it.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.core.money import Rounding, to_minor
from app.core.snapshots import PlatformLine, PlatformOrder
from app.program.rules import SPECIFICITY, Campaign, MatchField, ProductRule, Program

RATE_SCALE = 10**8  # rates carry at most 4 decimals, campaign factors 4 more
_PERCENT = 100
_HUNDRED_PERCENT = Decimal(100)
SHIPPING_LINE_ID = "shipping"

__all__ = ["Breakdown", "LineCashback", "Program", "Reason", "allocate", "calculate"]


class Reason:
    gift_card = "gift_card"
    tip = "tip"  # a tip is not a purchase
    removed = "removed"  # an order edit took the line off
    paid_with_credit = "paid_with_credit"  # all of it paid with gift cards or store credit
    test_order = "test_order"
    nothing_paid = "nothing_paid"
    zero_rate = "zero_rate"
    excluded = "excluded"
    below_minimum = "below_minimum"


@dataclass(frozen=True, slots=True)
class LineCashback:
    external_id: str
    eligible_amount: int
    rate: Decimal
    cashback_amount: int
    reason: str | None  # why the line earns nothing, when it earns nothing
    rate_source: str  # "base", "rule:<name>", "tier:<name>", "b2b", "excluded:<name>"…
    campaigns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Breakdown:
    lines: tuple[LineCashback, ...]
    eligible_amount: int
    cashback_amount: int
    reasons: tuple[str, ...]  # why the order earns nothing, when it earns nothing
    capped: bool = False
    # Paid partly with credit by an amount not known yet: calculated as if nothing was, so the
    # amount is an upper bound that must not be credited as it is.
    credit_payments_unknown: bool = False


# Where each match field's values live on a line; collections and tags hold several.
_ATTRIBUTES: dict[MatchField, tuple[str, bool]] = {
    MatchField.variant_id: ("variant_id", False),
    MatchField.product_id: ("product_id", False),
    MatchField.sku: ("sku", False),
    MatchField.collection: ("collections", True),
    MatchField.tag: ("product_tags", True),
    MatchField.product_type: ("product_type", False),
    MatchField.vendor: ("vendor", False),
}

# Rules of one field, by the value they match: (line attribute, holds several, table). Each
# rule comes with its rank, (-priority, position in the program): the lowest rank wins a tie.
_Ranked = tuple[tuple[int, int], ProductRule]
_FieldIndex = list[tuple[str, bool, dict[str, _Ranked]]]


def _index(rules: dict[tuple[MatchField, str], _Ranked]) -> _FieldIndex:
    """Per field, most specific first, only the fields some rule uses."""
    index: _FieldIndex = []
    for field in SPECIFICITY:
        table = {value: ranked for (f, value), ranked in rules.items() if f == field}
        if table:
            index.append((*_ATTRIBUTES[field], table))
    return index


def _in_scope(line: PlatformLine, field: MatchField, value: str) -> bool:
    attribute, several = _ATTRIBUTES[field]
    found = getattr(line, attribute)
    return value in found if several else value == found


class _Compiled:
    """A program indexed for matching, built once per program. It holds the program's rules,
    not the program: the cache below must not keep a program alive."""

    def __init__(self, program: Program) -> None:
        exclusions: dict[tuple[MatchField, str], _Ranked] = {}
        rates: dict[tuple[MatchField, str], _Ranked] = {}
        for position, rule in enumerate(program.rules):
            table = exclusions if rule.exclude else rates
            key, ranked = (rule.field, rule.value), ((-rule.priority, position), rule)
            table[key] = min(table.get(key, ranked), ranked)
        self.exclusions = _index(exclusions)
        self.rates = _index(rates)
        self.tiers = sorted(program.tiers, key=lambda t: -t.rate)

    def exclusion(self, line: PlatformLine) -> ProductRule | None:
        return self._match(self.exclusions, line)

    def rate_rule(self, line: PlatformLine) -> ProductRule | None:
        return self._match(self.rates, line)

    @staticmethod
    def _match(index: _FieldIndex, line: PlatformLine) -> ProductRule | None:
        """The rule of the most specific field matching the line; of rules of one field matching
        it (one value, or several of its tags or collections), the best ranked: the higher
        priority, then the first listed (not the first of the line's values)."""
        for attribute, several, table in index:  # most specific field first
            value = getattr(line, attribute)
            if not several:
                if value in table:
                    return table[value][1]
                continue
            found = [table[v] for v in value if v in table]
            if found:
                return min(found)[1]
        return None


# Compiled programs by object identity. An entry goes when its program is garbage-collected:
# CPython runs the finalizer as the program is freed, before its id can be given to another
# object, so an entry found is always its program's.
_compiled: dict[int, _Compiled] = {}


def compile_program(program: Program) -> _Compiled:
    """Index a program once per program object (programs are not changed once built)."""
    compiled = _compiled.get(id(program))
    if compiled is None:
        compiled = _compiled[id(program)] = _Compiled(program)
        weakref.finalize(program, _compiled.pop, id(program))
    return compiled


def _base_rate(program: Program, compiled: _Compiled, order: PlatformOrder) -> tuple[Decimal, str]:
    if order.b2b and program.b2b_rate is not None:
        return program.b2b_rate, "b2b"
    if order.customer is not None and compiled.tiers:
        tags = set(order.customer.tags)
        for tier in compiled.tiers:
            if tier.customer_tag in tags:
                return tier.rate, f"tier:{tier.name}"
    return program.base_rate, "base"


def _active_campaigns(program: Program, at: datetime | None, tz: ZoneInfo) -> list[Campaign]:
    if not program.campaigns or at is None:
        return []
    local = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(tz).replace(tzinfo=None)
    return [c for c in program.campaigns if c.starts_at <= local < c.ends_at]


def _line_base(line: PlatformLine, order: PlatformOrder, program: Program) -> int:
    """What the line contributes before rates: price × quantity, less discounts if the program
    subtracts them, with tax taken out or added as the program says."""
    amount = line.unit_price * line.quantity
    if program.subtract_discounts:
        amount -= line.discount_amount
    if order.taxes_included and not program.include_tax:
        amount -= line.tax_amount
    elif program.include_tax and not order.taxes_included:
        amount += line.tax_amount
    return max(amount, 0)


def _round(numerator: int, denominator: int, rounding: Rounding) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if rounding == Rounding.down or remainder == 0:
        return quotient
    twice = 2 * remainder
    if rounding == Rounding.half_up:
        return quotient + (twice >= denominator)
    return quotient + (twice > denominator or (twice == denominator and quotient % 2 == 1))


def _scaled(rate: Decimal) -> int:
    return int(rate * RATE_SCALE)


def calculate(
    order: PlatformOrder,
    program: Program,
    *,
    at: datetime | None = None,
    timezone: ZoneInfo | None = None,
) -> Breakdown:
    """The cashback of `order` under `program`. `at` is when the order was placed (campaign
    windows are read in `timezone`, the shop's); it defaults to the order's `created_at`."""
    compiled = compile_program(program)
    if program.exclude_test_orders and order.test:
        untouched = tuple(
            LineCashback(line.external_id, 0, Decimal(0), 0, Reason.test_order, "base")
            for line in order.lines
        )
        return Breakdown(untouched, 0, 0, (Reason.test_order,))

    campaigns = _active_campaigns(program, at or order.created_at, timezone or ZoneInfo("UTC"))
    default_rate, default_source = _base_rate(program, compiled, order)
    lines = list(order.lines)
    if program.include_shipping and order.shipping_amount > 0:
        lines.append(PlatformLine(SHIPPING_LINE_ID, "Shipping", 1, order.shipping_amount, 0))

    # The part paid with credit earns nothing: every base is scaled by paid / total.
    credit = order.paid_with_credit_amount
    credit_unknown = program.exclude_credit_payments and credit is None
    paid, whole = order.total_amount, order.total_amount
    if program.exclude_credit_payments and credit and whole > 0:
        paid = max(whole - credit, 0)
    else:
        paid = whole = 1

    bases: list[int] = []
    numerators: list[int] = []  # exact cashback × RATE_SCALE × _PERCENT × whole
    partial: list[tuple[str, Decimal, str | None, str, tuple[str, ...]]] = []
    for line in lines:
        base = 0 if line.gift_card or line.tip else _line_base(line, order, program)
        rate, source, reason, applied = _line_rate(
            line, compiled, default_rate, default_source, campaigns
        )
        if reason is None and base == 0:
            reason = Reason.removed if line.removed_quantity else Reason.nothing_paid
        if reason is None and paid == 0:
            reason = Reason.paid_with_credit
        if reason is None and rate == 0:
            reason = Reason.zero_rate
        bases.append(base)
        numerators.append(base * paid * _scaled(rate) if reason is None else 0)
        partial.append((line.external_id, rate, reason, source, applied))

    eligible_total = sum(bases[i] for i, p in enumerate(partial) if p[2] is None)
    eligible_paid = eligible_total * paid // whole
    minimum = _minor(program.minimum_eligible_amount, order.currency)
    if minimum is not None and eligible_total * paid < minimum * whole:
        numerators = [0] * len(numerators)
        partial = [(e, r, x or Reason.below_minimum, s, a) for e, r, x, s, a in partial]

    denominator = RATE_SCALE * _PERCENT * whole
    total = _round(sum(numerators), denominator, program.rounding)
    cap = _minor(program.maximum_cashback_per_order, order.currency)
    capped = cap is not None and total > cap
    if capped and cap is not None:
        total = cap
    amounts = allocate(total, numerators, [p[0] for p in partial])
    breakdown_lines = tuple(
        LineCashback(
            external_id,
            bases[i] * paid // whole,
            rate if reason is None else Decimal(0),
            amounts[i],
            reason,
            source,
            applied if reason is None else (),
        )
        for i, (external_id, rate, reason, source, applied) in enumerate(partial)
    )
    reasons: tuple[str, ...] = ()
    if total == 0:
        found = {line.reason for line in breakdown_lines if line.reason}
        reasons = tuple(sorted(found)) or (Reason.nothing_paid,)
        if Reason.below_minimum in found:  # only a minimum gives it
            reasons = (Reason.below_minimum,)
    return Breakdown(breakdown_lines, eligible_paid, total, reasons, capped, credit_unknown)


def _line_rate(
    line: PlatformLine,
    compiled: _Compiled,
    default_rate: Decimal,
    default_source: str,
    campaigns: list[Campaign],
) -> tuple[Decimal, str, str | None, tuple[str, ...]]:
    """(rate, what set it, reason it earns nothing or None, campaigns applied)."""
    if line.gift_card:
        return Decimal(0), "gift_card", Reason.gift_card, ()
    if line.tip:
        return Decimal(0), "tip", Reason.tip, ()
    excluded = compiled.exclusion(line)
    if excluded is not None:
        return Decimal(0), f"excluded:{excluded.name}", Reason.excluded, ()
    rule = compiled.rate_rule(line)
    rate, source = (
        (rule.rate, f"rule:{rule.name}")
        if rule and rule.rate is not None
        else (
            default_rate,
            default_source,
        )
    )
    applied: list[str] = []
    for campaign in campaigns:
        scope = campaign.scope
        if scope is None or _in_scope(line, scope.field, scope.value):
            rate = rate * campaign.multiplier + campaign.bonus_points
            applied.append(campaign.name)
    return min(rate, _HUNDRED_PERCENT), source, None, tuple(applied)


def _minor(amount: Decimal | None, currency: str) -> int | None:
    return None if amount is None else to_minor(amount, currency)


def allocate(total: int, weights: list[int], keys: list[str]) -> list[int]:
    """Split `total` over lines in proportion to `weights` by largest remainder.

    Each line gets the floor of its share; the units left over go to the largest remainders,
    ties broken by the line's key, so the result does not depend on line order. A line of
    weight 0 never gets anything.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0] * len(weights)
    floors = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    left = total - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], keys[i], i))
    for i in by_remainder[:left]:
        floors[i] += 1
    return floors
