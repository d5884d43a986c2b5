"""Schedule slots: one per scheduled local day, across clock changes and midnight, and a cron
that asks at every tick sees each slot and nothing older than its grace."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.schedule import (
    Weekday,
    due_slot,
    parse_week,
    slot_on,
    slots_between,
    week_before,
    week_bounds,
    week_label,
)

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
EVERY_DAY = list(Weekday)
GRACE = timedelta(minutes=30)

# After the last whole day a zone skipped (Samoa, 2011-12-30): every local date exists.
instants = st.datetimes(
    min_value=datetime(2016, 1, 1), max_value=datetime(2045, 1, 1), timezones=st.just(UTC)
)
times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 1, 15, 30, 45, 59]))
weekday_sets = st.sets(st.sampled_from(EVERY_DAY), min_size=1).map(sorted)
# Zones with clock changes at odd hours and by odd amounts, and the rest of the database.
zones = st.one_of(
    st.sampled_from(
        [
            "America/New_York",
            "Europe/London",
            "Australia/Lord_Howe",  # 30-minute change
            "America/Santiago",  # changes at midnight
            "America/Havana",  # changes at midnight
            "Asia/Tokyo",
            "Pacific/Chatham",
        ]
    ).map(ZoneInfo),
    st.timezones(),
)


def wall(day: date, at: time) -> datetime:
    return datetime.combine(day, at)


def exists(day: date, at: time, tz: ZoneInfo) -> bool:
    """Whether the clocks show `at` on `day` (not skipped by a jump forward)."""
    instant = slot_on(day, at, tz)
    return instant.astimezone(tz).replace(tzinfo=None) == wall(day, at)


@settings(max_examples=60, deadline=None)
@given(zones, times, weekday_sets, instants, st.sampled_from([1, 5]))
def test_a_cron_asking_every_tick_sees_every_slot_and_none_past_its_grace(
    tz: ZoneInfo, at: time, weekdays: list[Weekday], start: datetime, step_minutes: int
) -> None:
    end = start + timedelta(days=3)
    seen = []
    tick = start
    while tick <= end:
        due = due_slot(at, weekdays, tz, tick, GRACE)
        if due is not None:
            assert tick - GRACE < due <= tick
            seen.append(due)
        tick += timedelta(minutes=step_minutes)
    assert sorted(set(seen)) == slots_between(at, weekdays, tz, start - GRACE, end)


@settings(max_examples=200, deadline=None)
@given(zones, times, weekday_sets, instants)
def test_each_slot_is_the_wall_time_of_one_scheduled_local_day(
    tz: ZoneInfo, at: time, weekdays: list[Weekday], start: datetime
) -> None:
    end = start + timedelta(days=15)
    slots = slots_between(at, weekdays, tz, start, end)
    assert all(start < s <= end for s in slots)
    assert all(b - a > timedelta(hours=20) for a, b in itertools.pairwise(slots))
    scheduled = {d.number for d in weekdays}
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    days = [first + timedelta(days=n) for n in range(-1, (last - first).days + 2)]
    expected = {
        slot_on(d, at, tz)
        for d in days
        if d.weekday() in scheduled and start < slot_on(d, at, tz) <= end
    }
    assert set(slots) == expected  # one per scheduled local date, none else
    for d in days:
        slot = slot_on(d, at, tz)
        local = slot.astimezone(tz).replace(tzinfo=None)
        if exists(d, at, tz):
            assert local == wall(d, at)
        else:  # skipped by a jump forward: as far past the jump as `at` is past its start
            assert wall(d, at) < local <= wall(d, at) + timedelta(hours=3)


def test_a_time_skipped_by_the_spring_jump_falls_just_after_it() -> None:
    # New York, 2026-03-08: 02:00 EST becomes 03:00 EDT, so 02:30 never shows on the clocks.
    slots = slots_between(
        time(2, 30),
        EVERY_DAY,
        NEW_YORK,
        datetime(2026, 3, 6, 12, tzinfo=UTC),
        datetime(2026, 3, 10, 12, tzinfo=UTC),
    )
    assert slots == [
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),  # 02:30 EST (UTC-5)
        datetime(2026, 3, 8, 7, 30, tzinfo=UTC),  # 03:30 EDT: where 02:30 EST would be
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT (UTC-4)
        datetime(2026, 3, 10, 6, 30, tzinfo=UTC),
    ]


def test_a_time_shown_twice_in_the_autumn_is_its_first_showing() -> None:
    # New York, 2026-11-01: 02:00 EDT becomes 01:00 EST, so 01:30 shows twice.
    at = time(1, 30)
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert due_slot(at, EVERY_DAY, NEW_YORK, first, GRACE) == first
    assert due_slot(at, EVERY_DAY, NEW_YORK, second, GRACE) is None
    assert slots_between(at, EVERY_DAY, NEW_YORK, first - GRACE, second + GRACE) == [first]


def test_a_midnight_slot_belongs_to_the_day_it_starts() -> None:
    # Tokyo, Mondays at 00:00: Sunday 15:00 UTC, and not on the Sunday.
    monday = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)
    assert due_slot(time(0), [Weekday.mon], TOKYO, monday - timedelta(minutes=1), GRACE) is None
    assert due_slot(time(0), [Weekday.mon], TOKYO, monday, GRACE) == monday
    assert due_slot(time(0), [Weekday.mon], TOKYO, monday + timedelta(minutes=29), GRACE) == monday
    assert due_slot(time(0), [Weekday.mon], TOKYO, monday + GRACE, GRACE) is None
    # 23:50 on Sundays, asked at 00:05 Monday: yesterday's slot.
    late = datetime(2026, 11, 22, 14, 50, tzinfo=UTC)
    assert due_slot(time(23, 50), [Weekday.sun], TOKYO, late + timedelta(minutes=15), GRACE) == late


@settings(max_examples=200, deadline=None)
@given(zones, instants)
def test_weeks_tile_local_time_from_monday_midnight(tz: ZoneInfo, now: datetime) -> None:
    monday = week_before(now, tz)
    assert monday.weekday() == 0
    assert parse_week(week_label(monday)) == monday
    start, end = week_bounds(monday, tz)
    assert end == week_bounds(monday + timedelta(days=7), tz)[0]
    assert timedelta(days=7) - timedelta(hours=3) <= end - start <= timedelta(days=7, hours=3)
    assert end <= now < week_bounds(monday + timedelta(days=14), tz)[0]


def test_a_week_with_a_clock_change_is_an_hour_short() -> None:
    start, end = week_bounds(parse_week("2026-W10"), NEW_YORK)  # 2026-03-02 .. 03-09
    assert (start, end) == (
        datetime(2026, 3, 2, 5, tzinfo=UTC),
        datetime(2026, 3, 9, 4, tzinfo=UTC),
    )


@pytest.mark.parametrize("value", ["2026-W54", "2025-W53", "2026W48", "2026-W4", "26-W48x"])
def test_a_week_that_does_not_exist_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_week(value)
