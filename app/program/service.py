from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from pydantic import ValidationError
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import Actor
from app.catalog import service as catalog_service
from app.core.errors import ProblemError
from app.core.etags import VersionMismatch
from app.core.money import format_minor, to_minor
from app.core.snapshots import PlatformOrder, snapshot_from_json
from app.orders.models import Order
from app.program.calculator import Breakdown, calculate
from app.program.models import ProgramVersion
from app.program.rules import Program
from app.program.schemas import (
    BreakdownRead,
    LineBreakdown,
    PreviewResponse,
    ProgramRead,
    SimulationResult,
    SimulationTotals,
)
from app.shopify import payloads as shopify
from app.shops.models import Shop

SIMULATION_BATCH = 2000


class InvalidProgram(ProblemError):
    status, code, title = 422, "invalid_program", "The program is not valid for this shop"


class InvalidOrderPayload(ProblemError):
    status, code, title = 422, "invalid_order", "The order payload cannot be read"


_CURRENT = (
    select(ProgramVersion)
    .where(ProgramVersion.shop_id == bindparam("shop"))
    .order_by(ProgramVersion.version.desc())
    .limit(1)
)


async def current_program(session: AsyncSession, shop_id: int) -> ProgramVersion:
    return (await session.execute(_CURRENT, {"shop": shop_id})).scalar_one()


_RULES: dict[bytes, Program] = {}
_RULES_KEPT = 1024


def rules_of(version: ProgramVersion) -> Program:
    """The version's rules as a model, validated once per process for the same stored rules
    (keyed by their JSON, so nothing depends on ids never being reused)."""
    key = orjson.dumps(version.rules, option=orjson.OPT_SORT_KEYS)
    rules = _RULES.get(key)
    if rules is None:
        if len(_RULES) >= _RULES_KEPT:
            _RULES.clear()
        rules = _RULES[key] = version.rules_model
    return rules


def _read(version: ProgramVersion) -> ProgramRead:
    return ProgramRead.model_validate(
        {**version.rules, "version": version.version, "created_at": version.created_at}
    )


async def get_program(session: AsyncSession, shop: Shop) -> ProgramRead:
    return _read(await current_program(session, shop.id))


def check_for_shop(program: Program, shop: Shop) -> None:
    """What the schema cannot know: amounts must fit the shop's currency."""
    errors: list[dict[str, str]] = []
    for field in ("minimum_eligible_amount", "maximum_cashback_per_order"):
        value = getattr(program, field)
        if value is None:
            continue
        try:
            to_minor(value, shop.currency)
        except ValueError as exc:
            errors.append({"field": f"body.{field}", "message": str(exc)})
    if errors:
        raise InvalidProgram("; ".join(e["message"] for e in errors), errors=errors)


async def replace_program(
    session: AsyncSession,
    shop: Shop,
    program: Program,
    actor: Actor,
    *,
    if_match: int | None = None,
) -> ProgramRead:
    """Store `program` as the shop's next version; orders already calculated keep theirs.
    With `if_match`, only if the current version is still that one."""
    check_for_shop(program, shop)
    # Serialise concurrent changes of one shop's program on its row.
    await session.execute(select(Shop.id).where(Shop.id == shop.id).with_for_update())
    latest = await session.scalar(
        select(func.max(ProgramVersion.version)).where(ProgramVersion.shop_id == shop.id)
    )
    if if_match is not None and if_match != latest:
        raise VersionMismatch(
            f"the program is at version {latest}, not {if_match}; read it again",
            version=latest,
        )
    version = ProgramVersion(
        shop_id=shop.id, version=(latest or 0) + 1, rules=program.model_dump(mode="json")
    )
    session.add(version)
    await session.flush()
    await session.refresh(version)
    audit_service.record(
        session,
        shop_id=shop.id,
        actor=actor,
        action="program.updated",
        subject_type="program",
        subject_id=version.id,
        before={"version": version.version - 1},
        after={"version": version.version, **version.rules},
    )
    return _read(version)


def breakdown_read(breakdown: Breakdown, currency: str, version: int | None) -> BreakdownRead:
    return BreakdownRead(
        program_version=version,
        currency=currency,
        eligible_amount=format_minor(breakdown.eligible_amount, currency),
        cashback_amount=format_minor(breakdown.cashback_amount, currency),
        capped=breakdown.capped,
        reasons=list(breakdown.reasons),
        lines=[
            LineBreakdown(
                external_id=line.external_id,
                eligible_amount=format_minor(line.eligible_amount, currency),
                rate=line.rate.normalize() if line.rate else line.rate,
                rate_source=line.rate_source,
                campaigns=list(line.campaigns),
                cashback_amount=format_minor(line.cashback_amount, currency),
                reason=line.reason,
            )
            for line in breakdown.lines
        ],
    )


async def preview(
    session: AsyncSession, shop: Shop, payload: dict[str, Any], draft: Program | None
) -> PreviewResponse:
    """What an order would earn now (and under a draft), without storing anything."""
    try:
        order = shopify.parse_order(payload, "orders/paid")
    except (ValidationError, shopify.InvalidPayload) as exc:
        raise InvalidOrderPayload(str(exc)) from exc
    if order.currency != shop.currency:
        raise InvalidOrderPayload(f"order currency {order.currency} is not {shop.currency}")
    if draft is not None:
        check_for_shop(draft, shop)
    enriched = await catalog_service.enrich(session, shop.id, order)
    tz = ZoneInfo(shop.timezone)
    version = await current_program(session, shop.id)
    current = calculate(enriched, version.rules_model, timezone=tz)
    drafted = calculate(enriched, draft, timezone=tz) if draft is not None else None
    return PreviewResponse(
        current=breakdown_read(current, shop.currency, version.version),
        draft=breakdown_read(drafted, shop.currency, None) if drafted is not None else None,
    )


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


async def simulate(
    session: AsyncSession, shop: Shop, draft: Program, date_from: date, date_to: date
) -> SimulationResult:
    """Price a draft program over the shop's paid orders of a date range, batch by batch, so
    a year of a large shop never sits in memory at once."""
    check_for_shop(draft, shop)
    if date_to < date_from:
        raise InvalidProgram("`date_to` is before `date_from`")
    tz = ZoneInfo(shop.timezone)
    start, end = _day_start(date_from, tz), _day_start(date_to + timedelta(days=1), tz)
    current = (await current_program(session, shop.id)).rules_model
    counts = {"orders": 0, "current": 0, "draft": 0}
    sums = {"current": 0, "draft": 0}
    after_id = 0
    while True:
        rows = (
            await session.execute(
                select(Order.id, Order.snapshot)
                .where(
                    Order.shop_id == shop.id,
                    Order.created_at >= start,
                    Order.created_at < end,
                    Order.id > after_id,
                    Order.paid_received_at.is_not(None),
                    Order.cancelled_at.is_(None),
                    Order.snapshot.is_not(None),
                )
                .order_by(Order.id)
                .limit(SIMULATION_BATCH)
            )
        ).all()
        if not rows:
            break
        after_id = rows[-1].id
        orders: list[PlatformOrder] = [snapshot_from_json(row.snapshot) for row in rows]
        ids = set().union(*(catalog_service.product_ids(o) for o in orders))
        products = await catalog_service.load_products(session, shop.id, ids)
        for order in orders:
            enriched = catalog_service.apply_catalog(order, products)
            counts["orders"] += 1
            for name, program in (("current", current), ("draft", draft)):
                amount = calculate(enriched, program, timezone=tz).cashback_amount
                sums[name] += amount
                counts[name] += amount > 0
    cur = shop.currency
    return SimulationResult(
        orders=counts["orders"],
        currency=cur,
        current=SimulationTotals(
            orders_earning=counts["current"], cashback_amount=format_minor(sums["current"], cur)
        ),
        draft=SimulationTotals(
            orders_earning=counts["draft"], cashback_amount=format_minor(sums["draft"], cur)
        ),
        difference=format_minor(sums["draft"] - sums["current"], cur),
    )
