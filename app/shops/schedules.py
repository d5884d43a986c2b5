"""When the shop's practices happen: the daily review call and the weekly audit, each a local
time of day in the shop's timezone (slots: `app.core.schedule`)."""

from __future__ import annotations

from datetime import time

from pydantic import Field, field_validator

from app.core.schedule import Weekday
from app.core.schemas import RequestModel

TIME_OF_DAY = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
WORKING_DAYS = [Weekday.mon, Weekday.tue, Weekday.wed, Weekday.thu, Weekday.fri]


def _time_of_day(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


class ReviewSchedule(RequestModel):
    """At this local time on these weekdays, if orders wait for review, the alert webhook gets
    a `review.due` message: how many, the oldest wait and a link to the queue."""

    at: str = Field(pattern=TIME_OF_DAY, description="Local time of day, `HH:MM`.")
    weekdays: list[Weekday] = Field(
        default_factory=lambda: list(WORKING_DAYS), min_length=1, max_length=7
    )

    @field_validator("weekdays")
    @classmethod
    def _once_each_in_order(cls, value: list[Weekday]) -> list[Weekday]:
        return sorted(set(value), key=lambda d: d.number)

    @property
    def time_of_day(self) -> time:
        return _time_of_day(self.at)


class WeeklyAuditSchedule(RequestModel):
    """Each week on this weekday at this local time, the alert webhook gets an `audit.weekly`
    message with the last complete week's report (`GET /v1/audit/weekly`)."""

    weekday: Weekday = Weekday.mon
    at: str = Field(default="08:00", pattern=TIME_OF_DAY, description="Local time of day, `HH:MM`.")
    frequent_customer_orders_above: int = Field(
        default=3,
        ge=0,
        le=10_000,
        description="List the customers credited for more than this many orders in the week.",
    )

    @property
    def time_of_day(self) -> time:
        return _time_of_day(self.at)
