"""The credit maths, without a database: expiry dates in the shop's timezone, spending order,
and the property that every credit always adds up and no balance goes below zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.ledger.credits import (
    CreditLeft,
    NotEnoughCredit,
    credit_left,
    due_reminder,
    expires_at,
    expiry_due,
    reversal_within,
    spend,
    spend_amount,
    spending_order,
)

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")


def test_a_credit_expires_at_the_end_of_the_shops_local_day() -> None:
    # 22:10 in Paris on 3 March is already 4 March in Tokyo, still 3 March in Paris.
    credited = datetime(2026, 3, 3, 21, 10, tzinfo=UTC)
    assert expires_at(credited, 30, PARIS) == datetime(2026, 4, 2, 23, 59, 59, tzinfo=PARIS)
    # Late in the New York evening is the next UTC day: the local day counts.
    late = datetime(2026, 6, 2, 3, 30, tzinfo=UTC)  # 1 June, 23:30 EDT
    assert expires_at(late, 1, NEW_YORK) == datetime(2026, 6, 2, 23, 59, 59, tzinfo=NEW_YORK)


def test_an_expiry_across_a_daylight_saving_change_keeps_the_local_end_of_day() -> None:
    # Credited in winter (EST, UTC-5), expiring after the 8 March spring jump (EDT, UTC-4).
    credited = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
    spring = expires_at(credited, 10, NEW_YORK)
    assert spring.astimezone(UTC) == datetime(2026, 3, 12, 3, 59, 59, tzinfo=UTC)
    # Credited in summer, expiring after the 1 November fall back (EDT to EST).
    autumn = expires_at(datetime(2026, 10, 30, 15, 0, tzinfo=UTC), 5, NEW_YORK)
    assert autumn.astimezone(UTC) == datetime(2026, 11, 5, 4, 59, 59, tzinfo=UTC)
    # Expiring on the day of the jump itself: still that day's last second.
    jump_day = expires_at(datetime(2026, 3, 7, 15, 0, tzinfo=UTC), 1, NEW_YORK)
    assert jump_day.astimezone(UTC) == datetime(2026, 3, 9, 3, 59, 59, tzinfo=UTC)


def test_spending_takes_the_soonest_expiring_credit_first_and_never_expiry_last() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    never = CreditLeft(1, 500)
    later = CreditLeft(2, 300, expires_at=now + timedelta(days=60))
    sooner = CreditLeft(3, 200, expires_at=now + timedelta(days=10))
    gone = CreditLeft(4, 900, expires_at=now - timedelta(seconds=1))  # expired, not swept yet
    assert [c.entry_id for c in spending_order([never, later, sooner])] == [3, 2, 1]
    assert spend([never, later, sooner, gone], 600, now) == [(3, 200), (2, 300), (1, 100)]
    with pytest.raises(NotEnoughCredit) as refused:
        spend([never, later, sooner, gone], 1001, now)
    assert refused.value.available == 1000


def test_an_expiry_takes_what_is_left_once_and_a_reversal_no_more_than_is_left() -> None:
    end = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    credit = CreditLeft(1, 438, expires_at=end, redeemed=100)
    assert expiry_due(credit, end) == 0  # the last second of the day is still the day
    assert expiry_due(credit, end + timedelta(seconds=1)) == 338
    expired = CreditLeft(1, 438, expires_at=end, redeemed=100, expired=338)
    assert expiry_due(expired, end + timedelta(days=1)) == 0
    assert reversal_within(expired, 438) == 0  # nothing left: no negative surprise
    assert reversal_within(CreditLeft(1, 438, redeemed=100), 438) == 338


def test_a_late_credit_gets_its_closest_due_reminder_only() -> None:
    end = datetime(2026, 2, 1, tzinfo=UTC)
    assert due_reminder(end, end - timedelta(days=8), [7, 1]) is None
    assert due_reminder(end, end - timedelta(days=7), [7, 1]) == 7
    assert due_reminder(end, end - timedelta(hours=5), [7, 1]) == 1
    assert due_reminder(end, end + timedelta(seconds=1), [7, 1]) is None
    assert due_reminder(end, end, [7, 1]) == 1  # the expiry's own second is still the day


def test_a_spend_takes_exactly_what_it_asks_from_credits_with_something_left() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    used = CreditLeft(1, 500, redeemed=500)  # nothing left
    cent = CreditLeft(2, 300, expires_at=now + timedelta(days=1), reversed=299)  # one cent left
    later = CreditLeft(3, 700, expires_at=now + timedelta(days=9))
    never = CreditLeft(4, 900)
    assert spend([used, cent, later, never], 1, now) == [(2, 1)]
    assert spend([used, cent, later, never], 701, now) == [(2, 1), (3, 700)]
    assert spend([used, cent, later, never], 702, now) == [(2, 1), (3, 700), (4, 1)]


def test_a_spend_of_nothing_is_refused_and_a_refusal_says_what_is_there() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for amount in (0, -5):
        with pytest.raises(ValueError, match=r"^a spend is positive$"):
            spend([CreditLeft(1, 500)], amount, now)
    with pytest.raises(NotEnoughCredit) as refused:
        spend([CreditLeft(1, 500)], 501, now)
    assert (refused.value.available, str(refused.value)) == (500, "only 500 available")


def test_a_spend_amount_is_positive_minor_units_of_the_currency() -> None:
    assert spend_amount(Decimal("4.38"), "USD") == 438
    assert spend_amount(Decimal("0.01"), "USD") == 1
    assert spend_amount(Decimal("500"), "JPY") == 500
    for zero_or_less in (Decimal("0"), Decimal("0.00"), Decimal("-1.00")):
        with pytest.raises(ValueError, match=r"^the amount must be greater than zero$"):
            spend_amount(zero_or_less, "USD")
    with pytest.raises(ValueError, match="more decimals than USD allows"):
        spend_amount(Decimal("0.001"), "USD")


def test_what_is_left_of_a_credit_counts_each_kind_of_entry_taken_from_it() -> None:
    end = datetime(2026, 3, 1, tzinfo=UTC)
    taken = {"reversal": 100, "expiry": 20, "redemption": 3}
    assert credit_left(7, 438, end, taken) == CreditLeft(7, 438, end, 100, 20, 3)
    assert credit_left(7, 438, end, taken).left == 315
    assert credit_left(8, 438, None, {}) == CreditLeft(8, 438, None, 0, 0, 0)
    assert credit_left(8, 438, None, {}).left == 438


# The property: any sequence of credits, reversals, expiries and spends.

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)
operation = st.one_of(
    st.tuples(st.just("credit"), st.integers(1, 10_000), st.one_of(st.none(), st.integers(0, 60))),
    st.tuples(st.just("reverse"), st.integers(0, 30), st.integers(0, 12_000)),
    st.tuples(st.just("spend"), st.integers(1, 15_000), st.none()),
    st.tuples(st.just("pass_days"), st.integers(0, 20), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=60))
def test_every_credit_adds_up_and_no_balance_goes_below_zero(
    operations: list[tuple[str, int, int | None]],
) -> None:
    credits: list[CreditLeft] = []
    entries: list[int] = []  # every ledger entry's signed amount, as the ledger holds them
    now = DAY0

    def update(index: int, **taken: int) -> None:
        c = credits[index]
        credits[index] = CreditLeft(
            c.entry_id,
            c.amount,
            c.expires_at,
            reversed=c.reversed + taken.get("reversed", 0),
            expired=c.expired + taken.get("expired", 0),
            redeemed=c.redeemed + taken.get("redeemed", 0),
        )

    for kind, a, b in operations:
        if kind == "credit":
            days = b
            expiry = None if days is None else expires_at(now, days, NEW_YORK)
            credits.append(CreditLeft(len(credits) + 1, a, expiry))
            entries.append(a)
        elif kind == "reverse" and credits:
            index = a % len(credits)
            taken = reversal_within(credits[index], b or 0)
            if taken:
                update(index, reversed=taken)
                entries.append(-taken)
        elif kind == "spend":
            try:
                parts = spend(credits, a, now)
            except NotEnoughCredit as exc:
                assert exc.available < a
                continue
            assert sum(part for _, part in parts) == a
            for entry_id, part in parts:
                update(entry_id - 1, redeemed=part)
                entries.append(-part)
        elif kind == "pass_days":
            now += timedelta(days=a, hours=7)
            for index, credit in enumerate(credits):  # the sweeper
                due = expiry_due(credit, now)
                if due:
                    update(index, expired=due)
                    entries.append(-due)
        assert sum(entries) >= 0, "a balance below zero"
        assert sum(entries) == sum(c.left for c in credits), "balance = what is left"
        for c in credits:
            assert c.left >= 0
            assert c.reversed + c.expired + c.redeemed + c.left == c.amount
            if c.expired:
                assert c.expires_at is not None and now > c.expires_at
