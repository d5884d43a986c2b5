"""Local times of day on chosen weekdays, as instants: the slots of a shop's schedules.

A slot is a wall-clock time on a local date in the shop's timezone. Clocks change, and each
scheduled local date still has exactly one slot, in order:
- a time the clocks skip that day (a jump forward) falls where the skipped wall time would
  have been: 02:30 on a night that jumps from 02:00 to 03:00 is 03:30;
- a time the clocks show twice (set back) is its first occurrence.

A job that runs every few minutes asks for the slot that is due (`due_slot`): the latest one
at most `grace` old. Asked at every tick, it answers each slot at least once and never one
older than `grace`; the caller keys what it sends by the slot, so it sends once.

ISO weeks (`2026-W48`) run Monday 00:00 to Monday 00:00, local time, so a week with a clock
change is 167 or 169 hours long.

Pure: no I/O and no clock; `now` is always given.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Weekday(StrEnum):
    """In `date.weekday()` order: Monday is 0."""

    mon = "mon"
    tue = "tue"
    wed = "wed"
    thu = "thu"
    fri = "fri"
    sat = "sat"
    sun = "sun"

    @property
    def number(self) -> int:
        return list(Weekday).index(self)


def slot_on(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) of wall time `at` on local date `day`."""
    # fold=0: the first of two occurrences; in a gap, the offset before the jump, which lands
    # as far past the jump as `at` is past its start.
    return datetime.combine(day, at.replace(tzinfo=None, fold=0), tzinfo=tz).astimezone(UTC)


def slots_between(
    at: time, weekdays: Collection[Weekday], tz: ZoneInfo, start: datetime, end: datetime
) -> list[datetime]:
    """The slots in (start, end], oldest first."""
    days = {d.number for d in weekdays}
    first = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    found = set()
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        if day.weekday() in days:
            slot = slot_on(day, at, tz)
            if start < slot <= end:
                found.add(slot)
    return sorted(found)


def due_slot(
    at: time, weekdays: Collection[Weekday], tz: ZoneInfo, now: datetime, grace: timedelta
) -> datetime | None:
    """The latest slot in (now - grace, now], or None."""
    slots = slots_between(at, weekdays, tz, now - grace, now)
    return slots[-1] if slots else None


def parse_week(value: str) -> date:
    """The Monday of ISO week `YYYY-Www`; ValueError when there is no such week."""
    if len(value) != 8 or value[4:6] != "-W" or not (value[:4] + value[6:]).isdigit():
        raise ValueError(f"{value!r} is not an ISO week like 2026-W48")
    return date.fromisocalendar(int(value[:4]), int(value[6:]), 1)


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(monday: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of the local week beginning on `monday`, as UTC instants."""
    return slot_on(monday, time(0), tz), slot_on(monday + timedelta(days=7), time(0), tz)


def week_before(now: datetime, tz: ZoneInfo) -> date:
    """The Monday of the last complete local week before `now`."""
    today = now.astimezone(tz).date()
    return today - timedelta(days=today.weekday() + 7)
