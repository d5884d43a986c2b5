from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from app.audit import queries, weekly
from app.audit.models import AuditEvent
from app.audit.queries import AuditFilter
from app.audit.weekly import WeeklyAuditReport
from app.core.errors import Forbidden, InvalidCursor, ProblemError, Unauthorized, problem_responses
from app.core.ids import Id
from app.core.pagination import CursorQuery, LimitQuery, next_cursor
from app.deps import ReadCallerDep, ReadReviewerCallerDep, ReadSessionDep, ResourcesDep

router = APIRouter(tags=["Audit"])


class AuditEventRead(BaseModel):
    id: str
    at: datetime
    actor: str = Field(description="The API key's name, or `system`.")
    action: str
    subject_type: str = Field(description="`order`, `shop`, `program` or `api_key`.")
    subject_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    reason: str | None


class AuditEventList(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None


def _read(event: AuditEvent) -> AuditEventRead:
    return AuditEventRead(
        id=str(event.id),
        at=event.created_at,
        actor=event.actor,
        action=event.action,
        subject_type=event.subject_type,
        subject_id=str(event.subject_id),
        before=event.before,
        after=event.after,
        reason=event.reason,
    )


@router.get(
    "/v1/audit-events",
    operation_id="listAuditEvents",
    summary="List audit events",
    description=(
        "Who did what, when and why: status changes, review actions, settings, program and "
        "key changes, newest first. With `Accept: text/csv`, every matching event as CSV "
        "(oldest first) for the weekly audit export."
    ),
    response_model=AuditEventList,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(Unauthorized, Forbidden, InvalidCursor),
    },
)
async def list_audit_events(
    session: ReadSessionDep,
    res: ResourcesDep,
    caller: ReadReviewerCallerDep,
    date_from: Annotated[datetime | None, Query(description="At or after.")] = None,
    date_to: Annotated[datetime | None, Query(description="Before.")] = None,
    actor: Annotated[str | None, Query(description="An API key's name, or `system`.")] = None,
    action: Annotated[str | None, Query(description="e.g. `order.approved`.")] = None,
    order_id: Annotated[Id | None, Query(description="Events of one order.")] = None,
    cursor: CursorQuery = None,
    limit: LimitQuery = 50,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    where = AuditFilter(caller.shop.id, date_from, date_to, actor, action, order_id)
    if accept and "text/csv" in accept:
        return StreamingResponse(
            queries.csv_rows(res.read_sessionmaker, where),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="audit-events.csv"'},
        )
    events = await queries.page(session, where, cursor=cursor, limit=limit)
    return AuditEventList(
        items=[_read(e) for e in events[:limit]],
        next_cursor=next_cursor([e.id for e in events], limit),
    )


class InvalidWeek(ProblemError):
    status, code, title = 422, "invalid_week", "There is no such ISO week"


@router.get(
    "/v1/audit/weekly",
    operation_id="getWeeklyAudit",
    summary="Weekly audit report",
    description=(
        "One ISO week of the shop (Monday 00:00 to Monday 00:00 in the shop's timezone): "
        "orders credited, cashback issued and reversed, approvals with an adjusted amount "
        "(who, how much, why), rejections by reason, the five largest credits, customers "
        "credited for more than N orders, and what `cashback doctor` finds now. The same "
        "report the `audit.weekly` alert carries; a past week reads the same whenever asked "
        "(the doctor section aside). With `Accept: text/csv`, one table of sections."
    ),
    response_model=WeeklyAuditReport,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(Unauthorized, InvalidWeek),
    },
)
async def get_weekly_audit(
    session: ReadSessionDep,
    caller: ReadCallerDep,
    week: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{4}-W[0-9]{2}$",
            description="ISO week `YYYY-Www`; the last complete week when omitted.",
        ),
    ] = None,
    orders_above: Annotated[
        int | None,
        Query(
            ge=0,
            le=10_000,
            description="List customers credited for more than this many orders in the week; "
            "the shop's `weekly_audit` setting when omitted (3 without one).",
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Any:
    try:
        report = await weekly.report_for_week(session, caller.shop, week, orders_above=orders_above)
    except weekly.NoSuchWeek as exc:
        raise InvalidWeek(str(exc)) from exc
    if accept and "text/csv" in accept:
        return Response(
            weekly.report_csv(report),
            media_type="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="weekly-audit-{report.week}.csv"'
            },
        )
    return report
