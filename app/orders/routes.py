from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import CallerDep, SessionDep
from app.kit.errors import (
    InvalidCursor,
    NotFound,
    ProblemError,
    Unauthorized,
    problem_responses,
)
from app.kit.pagination import CursorQuery, LimitQuery
from app.orders import queries
from app.orders.schemas import OrderList, OrderRead
from app.orders.state import OrderStatus

router = APIRouter(prefix="/v1/orders", tags=["Orders"])


class InvalidStatusFilter(ProblemError):
    status, code, title = 422, "invalid_status_filter", "Unknown order status in filter"


def parse_statuses(raw: str | None) -> list[OrderStatus]:
    if not raw:
        return []
    known = {s.value for s in OrderStatus}
    wanted = [s.strip() for s in raw.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise InvalidStatusFilter(
            f"unknown status {', '.join(unknown)}; expected any of {', '.join(sorted(known))}"
        )
    return [OrderStatus(s) for s in wanted]


@router.get(
    "",
    operation_id="listOrders",
    summary="List orders",
    description="Newest first. Filters combine with AND; `status` takes a comma-separated list.",
    responses=problem_responses(InvalidCursor, Unauthorized, InvalidStatusFilter),
)
async def list_orders(
    session: SessionDep,
    caller: CallerDep,
    status: Annotated[
        str | None, Query(description="One or more statuses, comma-separated.")
    ] = None,
    external_id: Annotated[str | None, Query(description="The platform's order id.")] = None,
    customer_id: Annotated[int | None, Query(description="Our customer id.")] = None,
    created_from: Annotated[datetime | None, Query(description="Created at or after.")] = None,
    created_to: Annotated[datetime | None, Query(description="Created before.")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> OrderList:
    statuses = parse_statuses(status)
    return await queries.list_orders(
        session,
        caller.shop.id,
        statuses=statuses,
        external_id=external_id,
        customer_id=customer_id,
        created_from=created_from,
        created_to=created_to,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/{order_id}",
    operation_id="getOrder",
    summary="Get an order",
    description="The order with its per-line cashback breakdown and status history.",
    responses=problem_responses(NotFound, Unauthorized),
)
async def get_order(session: SessionDep, caller: CallerDep, order_id: int) -> OrderRead:
    return await queries.get_order(session, caller.shop.id, order_id)
