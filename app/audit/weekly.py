"""The weekly audit: one ISO week of a shop (Monday 00:00 to Monday 00:00, shop time), from
the ledger and the audit log, plus what `cashback doctor` finds now.

Figures are aggregated in SQL over that window. The ledger is append-only and the audit log
is only ever added to, so a past week reads the same whenever it is asked for; only the doctor
section (the invariants as they hold now) changes with the time of asking. Each week the shop's
alert webhook gets the last complete week as an `audit.weekly` message, once per week (the
event key is the week), on the day and at the local time the shop chose.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field
from sqlalchemy import BigInteger, Numeric, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import doctor
from app.audit.models import AuditEvent
from app.core.money import exponent, format_minor
from app.core.schedule import due_slot, parse_week, week_before, week_bounds, week_label
from app.ledger.models import Customer, EntryKind, LedgerEntry
from app.notifications import service as notification_service
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from app.shops.models import Shop
from app.shops.schedules import WeeklyAuditSchedule

AUDIT_WEEKLY = "audit.weekly"
LARGEST_CREDITS = 5
LISTED = 100  # rows kept per list; the counts are always complete
# A weekly audit not sent within this of its time (workers away) still goes out late.
SEND_GRACE = timedelta(hours=24)
AMOUNT = 'Decimal string in `currency`, e.g. `"4.38"`.'


class AdjustedApproval(BaseModel):
    order_id: str
    order_name: str | None
    actor: str = Field(description="Who approved: the API key's name.")
    at: datetime
    calculated_amount: str = Field(description="What the order earned. " + AMOUNT)
    approved_amount: str = Field(description="What the reviewer credited. " + AMOUNT)
    currency: str
    note: str | None = Field(description="The reviewer's reason for the change.")


class RejectionReason(BaseModel):
    reason: str
    count: int
    by_reviewers: int = Field(description="Of them, rejected by a person (not `system`).")


class LargestCredit(BaseModel):
    ledger_entry_id: str
    order_id: str | None
    order_name: str | None
    customer_id: str
    amount: str = Field(description=AMOUNT)
    currency: str
    at: datetime


class FrequentCustomer(BaseModel):
    customer_id: str
    external_id: str = Field(description="The platform's customer id.")
    email: str | None
    orders: int = Field(description="Orders credited to the customer in the week.")
    credited_amount: str = Field(description=AMOUNT)
    currency: str


class DoctorCheck(BaseModel):
    name: str
    ok: bool
    problems: int


class DoctorFinding(BaseModel):
    check: str
    subject: str
    detail: str


class DoctorSummary(BaseModel):
    ok: bool = Field(
        description="Every invariant of `cashback doctor` holds for the shop (order events "
        "checked for their orders: those received since the week's start)."
    )
    checked_at: datetime = Field(description="When it was checked: now, not in the week.")
    checks: list[DoctorCheck]
    findings: list[DoctorFinding]


class WeeklyAuditReport(BaseModel):
    week: str = Field(description="ISO week, e.g. `2026-W48`.")
    timezone: str = Field(description="The shop's timezone, which the week is local to.")
    starts_at: datetime = Field(description="Monday 00:00 local, inclusive.")
    ends_at: datetime = Field(description="The next Monday 00:00 local, exclusive.")
    currency: str = Field(description="ISO 4217 code of every amount of the report.")
    orders_credited: int
    cashback_issued: str = Field(description="Credits written in the week. " + AMOUNT)
    cashback_reversed: str = Field(description="Reversals written in the week. " + AMOUNT)
    approvals: int = Field(description="Orders approved by a reviewer.")
    adjusted_approvals_count: int
    adjusted_approvals: list[AdjustedApproval] = Field(
        description="Approvals of an amount other than the calculated one, oldest first."
    )
    rejections: int
    rejection_reasons: list[RejectionReason] = Field(description="Most frequent first.")
    largest_credits: list[LargestCredit] = Field(description="The five largest, largest first.")
    frequent_customer_orders_above: int
    frequent_customers_count: int
    frequent_customers: list[FrequentCustomer] = Field(
        description="Customers credited for more than `frequent_customer_orders_above` orders "
        "in the week, most orders first."
    )
    doctor: DoctorSummary
    generated_at: datetime


def audit_schedule(shop: Shop) -> WeeklyAuditSchedule:
    """The shop's weekly audit settings, or the defaults when it set none."""
    return WeeklyAuditSchedule.model_validate(shop.weekly_audit or {})


class NoSuchWeek(ValueError):
    """The week asked for is not an ISO week."""


async def report_for_week(
    session: AsyncSession, shop: Shop, week: str | None, *, orders_above: int | None
) -> WeeklyAuditReport:
    """The report of ISO week `week` (`YYYY-Www`), or of the last complete week in the shop's
    timezone when None."""
    try:
        monday = (
            parse_week(week) if week else week_before(datetime.now(UTC), ZoneInfo(shop.timezone))
        )
    except ValueError as exc:
        raise NoSuchWeek(str(exc)) from exc
    return await build_report(session, shop, monday, orders_above=orders_above)


async def build_report(
    session: AsyncSession,
    shop: Shop,
    monday: date,
    *,
    orders_above: int | None = None,
) -> WeeklyAuditReport:
    tz = ZoneInfo(shop.timezone)
    start, end = week_bounds(monday, tz)
    cur = shop.currency
    above = (
        audit_schedule(shop).frequent_customer_orders_above
        if orders_above is None
        else orders_above
    )
    E = LedgerEntry
    in_week = (E.shop_id == shop.id, E.created_at >= start, E.created_at < end)
    totals = (
        await session.execute(
            select(
                func.count(func.distinct(E.order_id)).filter(E.kind == EntryKind.credit),
                func.coalesce(func.sum(E.amount).filter(E.kind == EntryKind.credit), 0),
                func.coalesce(func.sum(-E.amount).filter(E.kind == EntryKind.reversal), 0),
            ).where(*in_week)
        )
    ).one()
    approvals, adjusted = await _approvals(session, shop, start, end)
    rejections = await _rejections(session, shop.id, start, end)
    largest = await session.execute(
        select(E.id, E.order_id, Order.name, E.customer_id, E.amount, E.created_at)
        .outerjoin(Order, Order.id == E.order_id)
        .where(*in_week, E.kind == EntryKind.credit)
        .order_by(E.amount.desc(), E.id)
        .limit(LARGEST_CREDITS)
    )
    frequent = await _frequent_customers(session, shop.id, start, end, above)
    # As things stand now; deliveries checked one by one only from the week's start.
    checked = await doctor.examine(session, shop_id=shop.id, events_since=start)
    return WeeklyAuditReport(
        week=week_label(monday),
        timezone=shop.timezone,
        starts_at=start,
        ends_at=end,
        currency=cur,
        orders_credited=int(totals[0]),
        cashback_issued=format_minor(int(totals[1]), cur),
        cashback_reversed=format_minor(int(totals[2]), cur),
        approvals=approvals,
        adjusted_approvals_count=len(adjusted),
        adjusted_approvals=adjusted[:LISTED],
        rejections=sum(r.count for r in rejections),
        rejection_reasons=rejections[:LISTED],
        largest_credits=[
            LargestCredit(
                ledger_entry_id=str(entry_id),
                order_id=str(order_id) if order_id is not None else None,
                order_name=name,
                customer_id=str(customer_id),
                amount=format_minor(amount, cur),
                currency=cur,
                at=at,
            )
            for entry_id, order_id, name, customer_id, amount, at in largest
        ],
        frequent_customer_orders_above=above,
        frequent_customers_count=len(frequent),
        frequent_customers=frequent[:LISTED],
        doctor=DoctorSummary(
            ok=checked.ok,
            checked_at=checked.checked_at,
            checks=[DoctorCheck(name=n, ok=not c, problems=c) for n, c in checked.counts.items()],
            findings=[
                DoctorFinding(check=f.check, subject=f.subject, detail=f.detail)
                for f in checked.findings
            ],
        ),
        generated_at=datetime.now(UTC),
    )


async def _approvals(
    session: AsyncSession, shop: Shop, start: datetime, end: datetime
) -> tuple[int, list[AdjustedApproval]]:
    """Approvals in the week, and those of an adjusted amount. The approved amount is in the
    audit event; the calculated one too since approvals record it, else the order's."""
    A = AuditEvent
    cur = shop.currency
    scale = 10 ** exponent(cur)

    def minor(key: str) -> Any:
        return cast(cast(A.after[key].astext, Numeric) * scale, BigInteger)

    approved = minor("amount")
    calculated = func.coalesce(minor("calculated_amount"), Order.cashback_amount)
    approvals = (
        select(
            A.subject_id,
            Order.name,
            A.actor,
            A.created_at,
            calculated.label("calculated"),
            approved.label("approved"),
            func.coalesce(A.after["note"].astext, Order.review_note).label("note"),
        )
        .join(Order, (Order.id == A.subject_id) & (Order.shop_id == A.shop_id))
        .where(
            A.shop_id == shop.id,
            A.action == "order.approved",
            A.subject_type == "order",
            A.created_at >= start,
            A.created_at < end,
        )
        .subquery()
    )
    count = int(await session.scalar(select(func.count()).select_from(approvals)) or 0)
    rows = await session.execute(
        select(approvals)
        .where(approvals.c.calculated != approvals.c.approved)
        .order_by(approvals.c.created_at, approvals.c.subject_id)
    )
    return count, [
        AdjustedApproval(
            order_id=str(order_id),
            order_name=name,
            actor=actor,
            at=at,
            calculated_amount=format_minor(int(calc), cur),
            approved_amount=format_minor(int(appr), cur),
            currency=cur,
            note=note,
        )
        for order_id, name, actor, at, calc, appr, note in rows
    ]


async def _rejections(
    session: AsyncSession, shop_id: int, start: datetime, end: datetime
) -> list[RejectionReason]:
    """Orders rejected in the week (by a reviewer or by the service), by reason."""
    A = AuditEvent
    reason = func.coalesce(A.reason, cast("(no reason given)", String))
    rows = await session.execute(
        select(reason, func.count(), func.count().filter(A.actor != "system"))
        .where(
            A.shop_id == shop_id,
            A.subject_type == "order",
            A.after["status"].astext == "rejected",
            A.created_at >= start,
            A.created_at < end,
        )
        .group_by(reason)
        .order_by(func.count().desc(), reason)
    )
    return [RejectionReason(reason=r, count=n, by_reviewers=p) for r, n, p in rows]


async def _frequent_customers(
    session: AsyncSession, shop_id: int, start: datetime, end: datetime, above: int
) -> list[FrequentCustomer]:
    E = LedgerEntry
    orders = func.count(func.distinct(E.order_id))
    credited = func.sum(E.amount)
    rows = await session.execute(
        select(Customer.id, Customer.external_id, Customer.email, orders, credited, E.currency)
        .join(Customer, Customer.id == E.customer_id)
        .where(
            E.shop_id == shop_id,
            E.kind == EntryKind.credit,
            E.created_at >= start,
            E.created_at < end,
        )
        .group_by(Customer.id, E.currency)
        .having(orders > above)
        .order_by(orders.desc(), credited.desc(), Customer.id)
    )
    return [
        FrequentCustomer(
            customer_id=str(customer_id),
            external_id=external_id,
            email=email,
            orders=int(n),
            credited_amount=format_minor(int(total), currency),
            currency=currency,
        )
        for customer_id, external_id, email, n, total, currency in rows
    ]


CSV_COLUMNS = (
    "section",
    "name",
    "value",
    "currency",
    "order_id",
    "customer_id",
    "actor",
    "at",
    "detail",
)


def report_csv(report: WeeklyAuditReport) -> str:
    """The report as one table: a row per figure and per listed item, by section."""
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(CSV_COLUMNS)
    cur = report.currency

    def row(
        section: str,
        name: str,
        value: object = "",
        currency: str = "",
        order_id: str | None = "",
        customer_id: str = "",
        actor: str = "",
        at: datetime | None = None,
        detail: str | None = "",
    ) -> None:
        out.writerow(
            (
                section,
                name,
                value,
                currency,
                order_id or "",
                customer_id,
                actor,
                at.isoformat() if at else "",
                detail or "",
            )
        )

    bounds = f"{report.starts_at.isoformat()} to {report.ends_at.isoformat()}"
    row("week", "week", report.week, detail=f"{bounds} ({report.timezone})")
    row("summary", "orders_credited", report.orders_credited)
    row("summary", "cashback_issued", report.cashback_issued, cur)
    row("summary", "cashback_reversed", report.cashback_reversed, cur)
    row("summary", "approvals", report.approvals)
    row("summary", "adjusted_approvals", report.adjusted_approvals_count)
    row("summary", "rejections", report.rejections)
    row(
        "summary",
        "frequent_customers",
        report.frequent_customers_count,
        detail=f"more than {report.frequent_customer_orders_above} orders",
    )
    for a in report.adjusted_approvals:
        row(
            "adjusted_approval",
            a.order_name or a.order_id,
            a.approved_amount,
            cur,
            a.order_id,
            actor=a.actor,
            at=a.at,
            detail=f"calculated {a.calculated_amount}; {a.note or ''}".rstrip("; "),
        )
    for r in report.rejection_reasons:
        row("rejection_reason", r.reason, r.count, detail=f"{r.by_reviewers} by reviewers")
    for c in report.largest_credits:
        row(
            "largest_credit",
            c.order_name or c.ledger_entry_id,
            c.amount,
            cur,
            c.order_id,
            c.customer_id,
            at=c.at,
        )
    for f in report.frequent_customers:
        row(
            "frequent_customer",
            f.email or f.external_id,
            f.credited_amount,
            cur,
            customer_id=f.customer_id,
            detail=f"{f.orders} orders",
        )
    for check in report.doctor.checks:
        row(
            "doctor",
            check.name,
            "ok" if check.ok else f"{check.problems} problem(s)",
            at=report.doctor.checked_at,
        )
    for finding in report.doctor.findings:
        row("doctor_finding", finding.check, finding.subject, detail=finding.detail)
    return buffer.getvalue()


async def send_due_audits(session: AsyncSession, now: datetime) -> int:
    """Each shop whose weekly audit time has come (in its timezone) gets the last complete
    week's report as one `audit.weekly` alert per week, however many workers ask. Returns
    the shops whose report was enqueued now."""
    scheduled = await session.execute(notification_service.alerted_schedules(Shop.weekly_audit))
    sent = 0
    for shop_id, timezone, stored in scheduled.all():
        schedule = WeeklyAuditSchedule.model_validate(stored)
        tz = ZoneInfo(timezone)
        slot = due_slot(schedule.time_of_day, [schedule.weekday], tz, now, SEND_GRACE)
        if slot is None:
            continue
        monday = week_before(slot, tz)
        event_key = f"{AUDIT_WEEKLY}:{week_label(monday)}"
        already = await session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.shop_id == shop_id, OutboxMessage.event_key == event_key
            )
        )
        if already is not None:  # asked every few minutes for a day: built once
            continue
        shop = await session.get_one(Shop, shop_id)
        report = await build_report(session, shop, monday)
        await notification_service.enqueue_alert(
            session,
            shop,
            event_key=event_key,
            event_type=AUDIT_WEEKLY,
            payload=report.model_dump(mode="json"),
        )
        sent += 1
    return sent
