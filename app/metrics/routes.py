from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query

from app.core.errors import ProblemError, Unauthorized, problem_responses
from app.deps import ReadCallerDep, ReadSessionDep
from app.metrics import dashboard
from app.shops.models import Shop

router = APIRouter(prefix="/v1/metrics", tags=["Dashboard"])

MAX_DAYS = 366


class InvalidRange(ProblemError):
    status, code, title = 422, "invalid_range", "The date range or timezone is not valid"


TzQuery = Annotated[
    str | None, Query(description="IANA timezone for the days; the shop's when omitted.")
]


def _zone(shop: Shop, tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or shop.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRange(f"unknown timezone {tz!r}") from exc


@router.get(
    "/dashboard",
    operation_id="getDashboardMetrics",
    summary="Today's figures and the health of processing",
    description=(
        "Today is the day in the shop's timezone (or `tz`); counters come from rollups "
        "kept with every change, so the answer stays fast at any size."
    ),
    responses=problem_responses(Unauthorized, InvalidRange),
)
async def get_dashboard(
    session: ReadSessionDep, caller: ReadCallerDep, tz: TzQuery = None
) -> dashboard.Dashboard:
    return await dashboard.dashboard(session, caller.shop, _zone(caller.shop, tz))


@router.get(
    "/daily",
    operation_id="getDailyMetrics",
    summary="Figures per day, for charts",
    description=f"One row per day from `from` to `to` (inclusive, at most {MAX_DAYS} days).",
    responses=problem_responses(Unauthorized, InvalidRange),
)
async def get_daily(
    session: ReadSessionDep,
    caller: ReadCallerDep,
    day_from: Annotated[date, Query(alias="from", description="First day.")],
    day_to: Annotated[date, Query(alias="to", description="Last day, inclusive.")],
    tz: TzQuery = None,
) -> dashboard.DailyFigures:
    if day_to < day_from or (day_to - day_from).days >= MAX_DAYS:
        raise InvalidRange(f"`to` must be on or after `from`, at most {MAX_DAYS} days")
    return await dashboard.daily(session, caller.shop, _zone(caller.shop, tz), day_from, day_to)


@router.get(
    "/top-customers",
    operation_id="getTopCustomers",
    summary="Customers who earned the most cashback",
    description="A ranking (not a paged list): the `limit` customers with the most credit issued.",
    responses=problem_responses(Unauthorized),
)
async def get_top_customers(
    session: ReadSessionDep,
    caller: ReadCallerDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS, description="Looking back this many days.")] = 30,
    limit: Annotated[int, Query(ge=1, le=100, description="How many customers, 1 to 100.")] = 10,
) -> dashboard.TopCustomers:
    since = datetime.now(UTC) - timedelta(days=days)
    return await dashboard.top_customers(session, caller.shop, since, limit)
