from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.core.errors import (
    Forbidden,
    InvalidCursor,
    NotFound,
    ProblemError,
    Unauthorized,
    problem_responses,
    refuse_methods,
)
from app.core.etags import IfMatch, InvalidIfMatch, etag, parse_version_if_match
from app.core.ids import Id
from app.core.money import format_minor
from app.core.pagination import CursorQuery, LimitQuery
from app.deps import CallerDep, ReadCallerDep, ReadSessionDep, ReviewerCallerDep, SessionDep
from app.orders import queries, review
from app.orders.models import Order
from app.orders.schemas import (
    ApproveRequest,
    BulkApproveRequest,
    BulkItemResult,
    BulkRejectRequest,
    BulkResult,
    OrderCounts,
    OrderList,
    OrderRead,
    ProcessRequest,
    ProcessResult,
    ReasonRequest,
)
from app.orders.state import OrderStatus

router = APIRouter(prefix="/v1/orders", tags=["Orders"])
review_router = APIRouter(prefix="/v1/orders", tags=["Review"])


class InvalidStatusFilter(ProblemError):
    status, code, title = 422, "invalid_status_filter", "Unknown order status in filter"


class OrderSort(StrEnum):
    newest = "-created_at"
    oldest = "created_at"


STATUS_FILTER = "One or more of " + ", ".join(f"`{s}`" for s in OrderStatus) + ", comma-separated."


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
    description=(
        "Filters combine with AND; `status` takes a comma-separated list. For the review "
        "queue: `?status=pending,held&sort=created_at` (oldest first), with each order's "
        "hold reasons, waiting time and the customer's history."
    ),
    responses=problem_responses(InvalidCursor, Unauthorized, InvalidStatusFilter),
)
async def list_orders(
    session: ReadSessionDep,
    caller: ReadCallerDep,
    status: Annotated[str | None, Query(description=STATUS_FILTER)] = None,
    external_id: Annotated[str | None, Query(description="The platform's order id.")] = None,
    name: Annotated[
        str | None,
        Query(description="The order's name as the store shows it, e.g. `#1042`.", max_length=255),
    ] = None,
    customer_id: Annotated[Id | None, Query(description="Our customer id.")] = None,
    created_from: Annotated[datetime | None, Query(description="Created at or after.")] = None,
    created_to: Annotated[datetime | None, Query(description="Created before.")] = None,
    sort: Annotated[OrderSort, Query(description="`-created_at` newest first (default).")] = (
        OrderSort.newest
    ),
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
) -> OrderList:
    return await queries.list_orders(
        session,
        caller.shop.id,
        statuses=parse_statuses(status),
        external_id=external_id,
        name=name,
        customer_id=customer_id,
        created_from=created_from,
        created_to=created_to,
        cursor=cursor,
        limit=limit,
        oldest_first=sort == OrderSort.oldest,
    )


@router.get(
    "/counts",
    operation_id="countOrdersByStatus",
    summary="Count orders per status",
    description="Every status with its count, in one call (the queue's badges).",
    responses=problem_responses(Unauthorized),
)
async def count_orders(session: ReadSessionDep, caller: ReadCallerDep) -> OrderCounts:
    return await queries.count_by_status(session, caller.shop.id)


# Static paths that take POST only, beside `/{order_id}`.
for _path in ("/bulk-approve", "/bulk-reject"):
    refuse_methods(router, _path, ["POST"])


@router.get(
    "/{order_id}",
    operation_id="getOrder",
    summary="Get an order",
    description="The order with its per-line breakdown and history; `ETag` carries its version.",
    responses=problem_responses(NotFound, Unauthorized),
)
async def get_order(
    session: SessionDep, caller: CallerDep, order_id: Id, response: Response
) -> OrderRead:
    order = await queries.get_order(session, caller.shop.id, order_id)
    response.headers["ETag"] = etag(order.version)
    return order


REVIEW_PROBLEMS = (
    Unauthorized,
    Forbidden,
    review.OrderNotFound,
    review.WrongStatus,
    review.VersionMismatch,
    InvalidIfMatch,
)


async def _respond(session: SessionDep, order: Order, response: Response) -> OrderRead:
    await session.flush()
    await session.refresh(order)
    response.headers["ETag"] = etag(order.version)
    return await queries.read_order(session, order)


@review_router.post(
    "/{order_id}/approve",
    operation_id="approveOrder",
    summary="Approve an order's cashback",
    description=(
        "From `pending` or `held`: credits the calculated amount, or an adjusted `amount` "
        "(then a `note` is required; at most the shop's approval ceiling). The order becomes "
        "`processed`, or `scheduled` when the shop delays awards."
    ),
    responses=problem_responses(
        *REVIEW_PROBLEMS, review.InvalidAmount, review.NoteRequired, review.CustomerRequired
    ),
)
async def approve_order(
    session: SessionDep,
    caller: ReviewerCallerDep,
    order_id: Id,
    response: Response,
    body: ApproveRequest | None = None,
    if_match: IfMatch = None,
) -> OrderRead:
    body = body or ApproveRequest()
    order = await review.approve(
        session,
        caller.shop,
        caller.actor,
        order_id,
        amount=body.amount,
        note=body.note,
        if_match=parse_version_if_match(if_match),
    )
    return await _respond(session, order, response)


@review_router.post(
    "/{order_id}/reject",
    operation_id="rejectOrder",
    summary="Reject an order's cashback",
    description="A `reason` is required. The order becomes `rejected`; nothing is credited.",
    responses=problem_responses(*REVIEW_PROBLEMS),
)
async def reject_order(
    session: SessionDep,
    caller: ReviewerCallerDep,
    order_id: Id,
    body: ReasonRequest,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    order = await review.reject(
        session,
        caller.shop,
        caller.actor,
        order_id,
        reason=body.reason,
        if_match=parse_version_if_match(if_match),
    )
    return await _respond(session, order, response)


@review_router.post(
    "/{order_id}/hold",
    operation_id="holdOrder",
    summary="Hold an order for review",
    description=(
        "From `pending` (or an order waiting for its customer): keeps it out of automatic "
        "processing until a reviewer releases, approves or rejects it. A `reason` is required."
    ),
    responses=problem_responses(*REVIEW_PROBLEMS),
)
async def hold_order(
    session: SessionDep,
    caller: ReviewerCallerDep,
    order_id: Id,
    body: ReasonRequest,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    order = await review.hold(
        session,
        caller.shop,
        caller.actor,
        order_id,
        reason=body.reason,
        if_match=parse_version_if_match(if_match),
    )
    return await _respond(session, order, response)


@review_router.post(
    "/{order_id}/release",
    operation_id="releaseOrder",
    summary="Release a held order",
    description="Back through evaluation in the shop's current mode, hold rules aside.",
    responses=problem_responses(*REVIEW_PROBLEMS),
)
async def release_order(
    session: SessionDep,
    caller: ReviewerCallerDep,
    order_id: Id,
    response: Response,
    if_match: IfMatch = None,
) -> OrderRead:
    order = await review.release(
        session, caller.shop, caller.actor, order_id, if_match=parse_version_if_match(if_match)
    )
    return await _respond(session, order, response)


@review_router.post(
    "/{order_id}/process",
    operation_id="processOrder",
    summary="Process cashback of a failed or waiting order",
    description=(
        "Without `expected_amount`: returns the amount it would credit now, doing nothing. "
        "With it: credits that amount, or answers 409 `calculation_changed` if the "
        "calculation no longer gives it."
    ),
    responses=problem_responses(
        *REVIEW_PROBLEMS,
        review.CalculationChanged,
        review.PaymentsUnknown,
        review.CustomerRequired,
        review.InvalidAmount,
    ),
)
async def process_order(
    session: SessionDep,
    caller: ReviewerCallerDep,
    order_id: Id,
    response: Response,
    body: ProcessRequest | None = None,
    if_match: IfMatch = None,
) -> ProcessResult:
    order, calculated, processed = await review.process(
        session,
        caller.shop,
        caller.actor,
        order_id,
        expected_amount=(body or ProcessRequest()).expected_amount,
        if_match=parse_version_if_match(if_match),
    )
    read = await _respond(session, order, response)
    return ProcessResult(
        processed=processed,
        calculated_amount=format_minor(calculated, order.currency),
        currency=order.currency,
        order=read,
    )


@review_router.post(
    "/bulk-approve",
    operation_id="bulkApproveOrders",
    summary="Approve up to 500 orders",
    description="Each at its calculated amount; a result per order, never all-or-nothing.",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def bulk_approve(
    session: SessionDep, caller: ReviewerCallerDep, body: BulkApproveRequest
) -> BulkResult:
    async def act(order_id: int) -> Order:
        return await review.approve(session, caller.shop, caller.actor, order_id, note=body.note)

    results = await review.bulk(session, body.ids, act)
    return BulkResult(results=[BulkItemResult.model_validate(r) for r in results])


@review_router.post(
    "/bulk-reject",
    operation_id="bulkRejectOrders",
    summary="Reject up to 500 orders",
    description="With one reason for all; a result per order, never all-or-nothing.",
    responses=problem_responses(Unauthorized, Forbidden),
)
async def bulk_reject(
    session: SessionDep, caller: ReviewerCallerDep, body: BulkRejectRequest
) -> BulkResult:
    async def act(order_id: int) -> Order:
        return await review.reject(session, caller.shop, caller.actor, order_id, reason=body.reason)

    results = await review.bulk(session, body.ids, act)
    return BulkResult(results=[BulkItemResult.model_validate(r) for r in results])
