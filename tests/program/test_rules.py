"""The program's rules: precedence, tiers, B2B, campaigns, options, minimum and cap."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from app.core.snapshots import PlatformCustomer, PlatformLine, PlatformOrder
from app.program.calculator import Breakdown, Reason, calculate
from app.program.rules import Campaign, CampaignScope, MatchField, ProductRule, Program, Tier

SHOE = PlatformLine(
    "1",
    "Trail shoe",
    1,
    10000,
    0,
    product_id="p1",
    variant_id="v1",
    sku="SKU-1",
    vendor="Northpeak",
    product_type="Shoes",
    product_tags=("outdoor",),
    collections=("c-run",),
)


def order(*lines: PlatformLine, **fields: Any) -> PlatformOrder:
    defaults: dict[str, Any] = {"total_amount": sum(li.unit_price * li.quantity for li in lines)}
    return PlatformOrder("o1", "USD", lines or (SHOE,), paid=True, **(defaults | fields))


def rule(field: MatchField, value: str, rate: str | None = None, **kw: Any) -> ProductRule:
    return ProductRule(
        name=f"{field}={value}",
        field=field,
        value=value,
        rate=Decimal(rate) if rate else None,
        exclude=rate is None,
        **kw,
    )


def only_line(breakdown: Breakdown) -> tuple[int, str, str | None]:
    [line] = breakdown.lines
    return line.cashback_amount, line.rate_source, line.reason


# Every field a rule can match, with the value SHOE carries for it.
FIELDS = [
    (MatchField.variant_id, "v1"),
    (MatchField.product_id, "p1"),
    (MatchField.sku, "SKU-1"),
    (MatchField.collection, "c-run"),
    (MatchField.tag, "outdoor"),
    (MatchField.product_type, "Shoes"),
    (MatchField.vendor, "Northpeak"),
]


@pytest.mark.parametrize(("field", "value"), FIELDS)
def test_each_rule_kind_sets_the_rate_of_the_lines_it_matches(
    field: MatchField, value: str
) -> None:
    program = Program(rules=[rule(field, value, "8"), rule(field, "something-else", "50")])
    assert only_line(calculate(order(), program)) == (800, f"rule:{field}={value}", None)


@pytest.mark.parametrize(("field", "value"), FIELDS)
def test_each_rule_kind_can_exclude(field: MatchField, value: str) -> None:
    breakdown = calculate(order(), Program(rules=[rule(field, value)]))
    assert only_line(breakdown) == (0, f"excluded:{field}={value}", Reason.excluded)
    assert breakdown.reasons == (Reason.excluded,)


def test_the_most_specific_rule_wins_whatever_the_order_of_rules() -> None:
    # Each field, from least to most specific, with a rate that names its position.
    rules = [rule(f, v, str(10 + i)) for i, (f, v) in enumerate(reversed(FIELDS))]
    for count in range(len(rules), 0, -1):
        present = rules[:count]
        expected = present[-1]  # the most specific of those present
        for arrangement in (present, list(reversed(present))):
            amount, source, _ = only_line(calculate(order(), Program(rules=arrangement)))
            assert source == f"rule:{expected.name}"
            assert amount == int(expected.rate or 0) * 100


def test_ties_between_equally_specific_rules_go_to_priority_then_list_order() -> None:
    low = rule(MatchField.tag, "outdoor", "3", priority=1)
    high = ProductRule(
        name="high", field=MatchField.collection, value="c-run", rate=Decimal(9), priority=5
    )
    other = ProductRule(name="other", field=MatchField.collection, value="c-run", rate=Decimal(7))
    assert only_line(calculate(order(), Program(rules=[other, high, low])))[1] == "rule:high"
    first = ProductRule(name="first", field=MatchField.tag, value="outdoor", rate=Decimal(4))
    second = ProductRule(name="second", field=MatchField.tag, value="outdoor", rate=Decimal(6))
    assert only_line(calculate(order(), Program(rules=[first, second])))[1] == "rule:first"


def test_a_tie_between_a_lines_tags_goes_to_the_first_rule_listed_not_the_first_tag() -> None:
    tagged = PlatformLine("1", "Shoe", 1, 10000, 0, product_tags=("sale", "outdoor"))
    first = ProductRule(name="first", field=MatchField.tag, value="outdoor", rate=Decimal(4))
    second = ProductRule(name="second", field=MatchField.tag, value="sale", rate=Decimal(6))
    for tags in (("sale", "outdoor"), ("outdoor", "sale")):
        line = PlatformLine("1", "Shoe", 1, 10000, 0, product_tags=tags)
        assert only_line(calculate(order(line), Program(rules=[first, second]))) == (
            400,
            "rule:first",
            None,
        )
    # A higher priority beats the list order, whichever tag comes first.
    urgent = second.model_copy(update={"priority": 1})
    assert only_line(calculate(order(tagged), Program(rules=[first, urgent])))[1] == "rule:second"
    # Exclusions of two of the line's collections: the first listed is the one named.
    both = PlatformLine("1", "Shoe", 1, 10000, 0, collections=("c-b", "c-a"))
    banned = [rule(MatchField.collection, "c-a"), rule(MatchField.collection, "c-b")]
    assert only_line(calculate(order(both), Program(rules=banned)))[1] == "excluded:collection=c-a"
    banned[1] = rule(MatchField.collection, "c-b", priority=1)
    assert only_line(calculate(order(both), Program(rules=banned)))[1] == "excluded:collection=c-b"
    twice = [rule(MatchField.vendor, "Northpeak"), rule(MatchField.vendor, "Northpeak")]
    twice[1] = twice[1].model_copy(update={"name": "urgent", "priority": 1})
    assert only_line(calculate(order(), Program(rules=twice)))[1] == "excluded:urgent"


def test_a_rule_of_a_more_specific_field_for_another_value_does_not_hide_a_matching_one() -> None:
    program = Program(
        rules=[
            rule(MatchField.variant_id, "v-other", "20"),
            rule(MatchField.vendor, "Northpeak", "7"),
        ]
    )
    assert only_line(calculate(order(), program)) == (700, "rule:vendor=Northpeak", None)


def test_an_order_without_a_customer_gets_the_base_rate_under_tiers() -> None:
    program = Program(tiers=[Tier(name="VIP", customer_tag="vip", rate=Decimal(8))])
    assert only_line(calculate(order(customer=None), program)) == (500, "base", None)


def test_exclusions_win_over_any_rate_rule_tier_and_campaign() -> None:
    program = Program(
        rules=[rule(MatchField.variant_id, "v1", "20"), rule(MatchField.vendor, "Northpeak")],
        tiers=[Tier(name="VIP", customer_tag="vip", rate=Decimal(30))],
        campaigns=[
            Campaign(
                name="x2",
                starts_at=datetime(2026, 1, 1),
                ends_at=datetime(2027, 1, 1),
                multiplier=Decimal(2),
            )
        ],
    )
    vip = PlatformCustomer("c1", tags=("vip",))
    breakdown = calculate(order(customer=vip, created_at=datetime(2026, 6, 1, tzinfo=UTC)), program)
    assert only_line(breakdown) == (0, "excluded:vendor=Northpeak", Reason.excluded)


def test_tiers_override_the_base_rate_and_the_best_tier_wins() -> None:
    program = Program(
        tiers=[
            Tier(name="Gold", customer_tag="gold", rate=Decimal(7)),
            Tier(name="VIP", customer_tag="vip", rate=Decimal(8)),
        ]
    )
    both = PlatformCustomer("c1", tags=("gold", "vip"))
    assert only_line(calculate(order(customer=both), program)) == (800, "tier:VIP", None)
    plain = PlatformCustomer("c2", tags=("newsletter",))
    assert only_line(calculate(order(customer=plain), program)) == (500, "base", None)


def test_product_rules_beat_tiers_and_b2b_beats_tiers() -> None:
    program = Program(
        b2b_rate=Decimal(2),
        tiers=[Tier(name="VIP", customer_tag="vip", rate=Decimal(8))],
        rules=[rule(MatchField.product_type, "Shoes", "3")],
    )
    vip = PlatformCustomer("c1", tags=("vip",))
    assert only_line(calculate(order(customer=vip), program))[1] == "rule:product_type=Shoes"
    plain = PlatformLine("2", "Socks", 1, 10000, 0)
    b2b = calculate(order(plain, customer=vip, b2b=True, company_location_id="loc-1"), program)
    assert only_line(b2b) == (200, "b2b", None)
    assert only_line(calculate(order(plain, customer=vip), program)) == (800, "tier:VIP", None)


def test_campaigns_apply_inside_their_window_in_the_shops_timezone() -> None:
    weekend = Campaign(
        name="Double weekend",
        starts_at=datetime(2026, 11, 28, 0, 0),
        ends_at=datetime(2026, 11, 30, 0, 0),
        multiplier=Decimal(2),
    )
    program = Program(campaigns=[weekend])
    ny = ZoneInfo("America/New_York")

    def earned(at_utc: datetime) -> int:
        return calculate(order(), program, at=at_utc, timezone=ny).cashback_amount

    # 2026-11-28 00:00 in New York is 05:00 UTC.
    assert earned(datetime(2026, 11, 28, 4, 59, 59, tzinfo=UTC)) == 500
    assert earned(datetime(2026, 11, 28, 5, 0, 0, tzinfo=UTC)) == 1000
    assert earned(datetime(2026, 11, 30, 4, 59, 59, tzinfo=UTC)) == 1000
    assert earned(datetime(2026, 11, 30, 5, 0, 0, tzinfo=UTC)) == 500  # the end is exclusive
    line = calculate(order(), program, at=datetime(2026, 11, 29, tzinfo=UTC), timezone=ny)
    assert line.lines[0].campaigns == ("Double weekend",)


ALL_YEAR = Campaign(
    name="x2", starts_at=datetime(2026, 1, 1), ends_at=datetime(2027, 1, 1), multiplier=Decimal(2)
)
NEW_YEAR = Campaign(
    name="New year x2",
    starts_at=datetime(2026, 1, 1),
    ends_at=datetime(2026, 1, 2),
    multiplier=Decimal(2),
)


def test_an_order_placed_at_no_known_time_gets_no_campaign() -> None:
    assert calculate(order(), Program(campaigns=[ALL_YEAR])).cashback_amount == 500


def test_a_placing_time_with_an_offset_is_read_at_that_offset() -> None:
    program = Program(campaigns=[NEW_YEAR])
    paris = timezone(timedelta(hours=1))
    # 00:30 in Paris on 1 January is still 31 December, 23:30, in a shop on UTC.
    assert (
        calculate(order(), program, at=datetime(2026, 1, 1, 0, 30, tzinfo=paris)).cashback_amount
        == 500
    )
    assert (
        calculate(order(), program, at=datetime(2026, 1, 1, 1, 30, tzinfo=paris)).cashback_amount
        == 1000
    )


@pytest.fixture
def server_in_tokyo(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_in_tokyo")
def test_a_placing_time_without_offset_is_utc_whatever_the_servers_timezone() -> None:
    program = Program(campaigns=[NEW_YEAR])
    # 1 January 03:00 UTC is in the window; read as Tokyo time it would be 31 December 18:00.
    assert calculate(order(), program, at=datetime(2026, 1, 1, 3, 0)).cashback_amount == 1000
    assert calculate(order(), program, at=datetime(2025, 12, 31, 23, 0)).cashback_amount == 500


def test_a_campaign_scoped_on_one_value_fields_applies_to_their_lines_only() -> None:
    for field, value in [(MatchField.vendor, "Northpeak"), (MatchField.product_id, "p1")]:
        bonus = ALL_YEAR.model_copy(
            update={
                "multiplier": Decimal(1),
                "bonus_points": Decimal(2),
                "scope": CampaignScope(field=field, value=value),
            }
        )
        socks = PlatformLine("2", "Socks", 1, 10000, 0, vendor="Woolworks", product_id="p2")
        bare = PlatformLine("3", "Sticker", 1, 10000, 0)  # no vendor, no product
        placed = datetime(2026, 5, 1, tzinfo=UTC)
        breakdown = calculate(
            order(SHOE, socks, bare, created_at=placed), Program(campaigns=[bonus])
        )
        assert [(li.rate, li.campaigns) for li in breakdown.lines] == [
            (Decimal(7), ("x2",)),
            (Decimal(5), ()),
            (Decimal(5), ()),
        ]


def test_a_scoped_campaign_adds_points_only_to_its_lines() -> None:
    bonus = Campaign(
        name="+2 on running",
        starts_at=datetime(2026, 1, 1),
        ends_at=datetime(2027, 1, 1),
        bonus_points=Decimal(2),
        scope=CampaignScope(field=MatchField.collection, value="c-run"),
    )
    socks = PlatformLine("2", "Socks", 1, 10000, 0)
    breakdown = calculate(
        order(SHOE, socks, created_at=datetime(2026, 5, 1, tzinfo=UTC)), Program(campaigns=[bonus])
    )
    assert [(li.rate, li.cashback_amount) for li in breakdown.lines] == [
        (Decimal(7), 700),
        (Decimal(5), 500),
    ]


def test_minimum_eligible_amount_and_cap_apply_at_order_level() -> None:
    small = order(PlatformLine("1", "Pen", 2, 900, 0))  # 18.00 eligible
    below = calculate(small, Program(minimum_eligible_amount=Decimal("20")))
    assert (below.cashback_amount, below.reasons) == (0, (Reason.below_minimum,))
    at_minimum = calculate(small, Program(minimum_eligible_amount=Decimal("18.00")))
    assert at_minimum.cashback_amount == 90

    big = order(PlatformLine("1", "TV", 1, 300000, 0), PlatformLine("2", "Cable", 1, 100000, 0))
    capped = calculate(big, Program(maximum_cashback_per_order=Decimal("10.01")))
    assert capped.capped and capped.cashback_amount == 1001
    assert [li.cashback_amount for li in capped.lines] == [751, 250]  # 3:1, by largest remainder


def test_shipping_tax_and_discount_options() -> None:
    taxed = PlatformLine("1", "Shoe", 1, 10000, 1000, tax_amount=800)
    base = order(taxed, shipping_amount=500)
    assert calculate(base, Program()).eligible_amount == 9000  # discount off, no tax, no ship
    assert calculate(base, Program(include_tax=True)).eligible_amount == 9800
    assert calculate(base, Program(subtract_discounts=False)).eligible_amount == 10000
    with_shipping = calculate(base, Program(include_shipping=True))
    assert with_shipping.eligible_amount == 9500
    assert [li.external_id for li in with_shipping.lines] == ["1", "shipping"]
    # Prices that include tax: the tax is taken out unless the program includes it.
    inclusive = order(taxed, taxes_included=True)
    assert calculate(inclusive, Program()).eligible_amount == 8200
    assert calculate(inclusive, Program(include_tax=True)).eligible_amount == 9000


def test_the_part_paid_with_credit_earns_nothing() -> None:
    half_credit = order(total_amount=10000, paid_with_credit_amount=5000)
    assert calculate(half_credit, Program()).cashback_amount == 250
    assert calculate(half_credit, Program(exclude_credit_payments=False)).cashback_amount == 500


@pytest.mark.parametrize(
    "bad",
    [
        {"base_rate": "101"},
        {"base_rate": "-1"},
        {"base_rate": "5.00001"},
        {"rounding": "up"},
        {"rules": [{"name": "r", "field": "sku", "value": "A", "rate": "5", "exclude": True}]},
        {"rules": [{"name": "r", "field": "sku", "value": "A"}]},
        {"rules": [{"name": "r", "field": "color", "value": "red", "rate": "5"}]},
        {
            "campaigns": [
                {
                    "name": "c",
                    "starts_at": "2026-01-02T00:00:00",
                    "ends_at": "2026-01-01T00:00:00",
                    "multiplier": "2",
                }
            ]
        },
        {
            "campaigns": [
                {
                    "name": "c",
                    "starts_at": "2026-01-01T00:00:00+01:00",
                    "ends_at": "2026-01-02T00:00:00",
                    "multiplier": "2",
                }
            ]
        },
        {"unknown_setting": True},
    ],
)
def test_invalid_programs_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Program.model_validate(bad)


lines = st.lists(
    st.builds(
        PlatformLine,
        external_id=st.uuids().map(str),
        title=st.just("item"),
        quantity=st.integers(1, 20),
        unit_price=st.integers(0, 10**7),
        discount_amount=st.integers(0, 10**6),
        gift_card=st.booleans(),
        product_id=st.sampled_from(["p1", "p2", "p3", None]),
        vendor=st.sampled_from(["Northpeak", "Woolworks", None]),
        product_tags=st.lists(st.sampled_from(["outdoor", "sale", "gift"]), max_size=2).map(tuple),
    ),
    min_size=1,
    max_size=25,
    unique_by=lambda line: line.external_id,
)
rates = st.decimals(min_value=0, max_value=100, places=2)
amounts = st.decimals(min_value=0, max_value=5000, places=2)


@st.composite
def product_rule(draw: st.DrawFn) -> ProductRule:
    rate = draw(st.one_of(st.none(), rates))
    return ProductRule(
        name=draw(st.text("abcdef", min_size=1, max_size=5)),
        field=draw(st.sampled_from([MatchField.product_id, MatchField.vendor, MatchField.tag])),
        value=draw(st.sampled_from(["p1", "p2", "Northpeak", "Woolworks", "outdoor", "gift"])),
        rate=rate,
        exclude=rate is None,
        priority=draw(st.integers(-3, 3)),
    )


product_rules = st.lists(product_rule(), max_size=8)
programs = st.builds(
    Program,
    base_rate=rates,
    minimum_eligible_amount=st.one_of(st.none(), amounts),
    maximum_cashback_per_order=st.one_of(st.none(), amounts),
    rules=product_rules,
)


@given(lines=lines, program=programs)
def test_random_programs_keep_every_money_invariant(
    lines: list[PlatformLine], program: Program
) -> None:
    the_order = order(*lines)
    breakdown = calculate(the_order, program)
    assert sum(li.cashback_amount for li in breakdown.lines) == breakdown.cashback_amount
    assert all(li.cashback_amount >= 0 for li in breakdown.lines)
    if program.maximum_cashback_per_order is not None:
        assert breakdown.cashback_amount <= program.maximum_cashback_per_order * 100
    if program.minimum_eligible_amount is not None and breakdown.cashback_amount > 0:
        assert breakdown.eligible_amount >= program.minimum_eligible_amount * 100
    for line in breakdown.lines:
        if line.reason is not None:
            assert line.cashback_amount == 0
        if line.rate_source.startswith("excluded:"):
            assert line.reason == Reason.excluded


@given(lines=lines, program=programs, low=rates, high=rates)
def test_a_higher_base_rate_never_earns_less_under_any_program(
    lines: list[PlatformLine], program: Program, low: Decimal, high: Decimal
) -> None:
    low, high = sorted((low, high))
    the_order = order(*lines)
    assert (
        calculate(the_order, program.model_copy(update={"base_rate": low})).cashback_amount
        <= calculate(the_order, program.model_copy(update={"base_rate": high})).cashback_amount
    )


@given(lines=lines, program=programs, data=st.data())
def test_line_order_never_matters_under_any_program(
    lines: list[PlatformLine], program: Program, data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(lines))
    first = calculate(order(*lines), program)
    second = calculate(order(*shuffled), program)
    assert {li.external_id: li.cashback_amount for li in first.lines} == {
        li.external_id: li.cashback_amount for li in second.lines
    }
