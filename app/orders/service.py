"""Order use cases: take in a platform snapshot, evaluate it, credit it. Flushes, never commits."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from app.audit import service as audit_service
from app.audit.service import SYSTEM, Actor
from app.catalog import service as catalog_service
from app.core.context import bind
from app.core.money import format_minor
from app.core.snapshots import (
    PlatformCustomer,
    PlatformLine,
    PlatformOrder,
    snapshot_from_json,
    snapshot_to_json,
)
from app.core.uow import HeldRows, Part, defer_job, uow_of
from app.credit_sync import service as credit_sync
from app.ledger import credits
from app.ledger import service as ledger_service
from app.metrics import rollup
from app.orders import lifecycle, prefetch, refunds
from app.orders.holds import (
    HoldFacts,
    HoldRules,
    account_problem,
    held_only_for_account,
    hold_reasons,
)
from app.orders.models import Order, OrderLine
from app.orders.state import REDUCIBLE, UNDECIDED, OrderStatus
from app.program.calculator import SHIPPING_LINE_ID, Breakdown, calculate
from app.program.models import ProgramVersion
from app.program.rules import Program
from app.program.service import current_program, rules_of
from app.shopify.admin import OrderPayments
from app.shops.models import ProcessingMode, Shop

logger = logging.getLogger(__name__)


class InvalidOrder(ValueError):
    """The snapshot can never be processed as it is (retrying will not help)."""


_NO_HOLDS = HoldRules()
_NOT_CREDITED_FINANCIAL_STATUSES = {"refunded": "order refunded", "voided": "payment voided"}


READ_PAYMENTS_JOB = "read_order_payments"
# The reason an order stays `received` while its gift card and store credit payments are read.
WAITING_FOR_PAYMENTS = (
    "waiting for the order's transactions from Shopify (gift card or store credit)"
)
PAYMENTS_NEED_REVIEW = (
    "paid partly with a gift card or store credit, and without Admin API access the amounts "
    "are unknown: approve the amount the rest of the order earns"
)
B2B_WITHOUT_LOCATION = (
    "B2B order without a company location: store credit belongs to a company location"
)


def read_payments_job_id(order_id: int) -> str:
    return f"order:{order_id}:payments"


async def take_snapshot(
    session: AsyncSession, shop: Shop, snapshot: PlatformOrder, *, received_at: datetime
) -> Order:
    """A platform's snapshot of an order (created, paid, updated or cancelled): ingested and
    evaluated, and a cancelled order's credit taken back."""
    order = await ingest_order(session, shop, snapshot, received_at=received_at)
    if snapshot.cancelled_at is not None:
        await refunds.cancel(session, shop, order)
    return order


async def ingest_order(
    session: AsyncSession, shop: Shop, snapshot: PlatformOrder, *, received_at: datetime
) -> Order:
    """Record a snapshot of a platform order and evaluate it, once per business key.

    Snapshots of decided orders and snapshots older than the one held are ignored, so
    duplicate and reordered deliveries never change what was already decided.
    """
    if snapshot.currency != shop.currency:
        raise InvalidOrder(f"order currency {snapshot.currency} is not the shop's {shop.currency}")
    order, fresh = await _insert_and_lock(session, shop, snapshot)
    bind(order_id=order.id)
    if fresh:
        await rollup.bump(session, shop.id, order.id, orders=1)
        audit_service.record(
            session,
            shop_id=shop.id,
            actor=SYSTEM,
            action="order.received",
            subject_type="order",
            subject_id=order.id,
            after={"status": OrderStatus.received},
        )
    if _is_stale(order, snapshot):
        return order
    if order.status in UNDECIDED:
        breakdown = await _apply_snapshot(
            session, shop, order, snapshot, received_at=received_at, fresh=fresh
        )
        await evaluate(session, shop, order, zero_reason=", ".join(breakdown.reasons) or None)
    elif order.status in REDUCIBLE and _is_newer(order, snapshot):
        await _recalculate_edited(session, shop, order, snapshot, received_at=received_at)
    return order


async def _insert_and_lock(
    session: AsyncSession, shop: Shop, snapshot: PlatformOrder
) -> tuple[Order, bool]:
    """The order of `snapshot`, locked, inserted unless known; and whether it was inserted."""
    prefetched = prefetch.take_order(session, shop.id, snapshot.external_id)
    if prefetched is not None:  # a batch inserted and locked its orders at once
        return prefetched
    orders = cast(Table, Order.__table__)  # Core, not the ORM's bulk insert: the hot path
    inserted = await session.execute(
        insert(orders)
        .values(
            shop_id=shop.id,
            external_id=snapshot.external_id,
            currency=snapshot.currency,
            status=OrderStatus.received,
            version=1,
        )
        .on_conflict_do_nothing(index_elements=[orders.c.shop_id, orders.c.external_id])
        .returning(orders.c.id)
    )
    new_id = inserted.scalar_one_or_none()
    order = await lifecycle.find_order(session, shop.id, snapshot.external_id, lock=True)
    assert order is not None  # inserted above, or by a transaction that committed first
    return order, new_id is not None


def _is_newer(order: Order, snapshot: PlatformOrder) -> bool:
    return (
        snapshot.updated_at is not None
        and order.source_updated_at is not None
        and snapshot.updated_at > order.source_updated_at
    )


async def _recalculate_edited(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    snapshot: PlatformOrder,
    *,
    received_at: datetime,
    payments_readable: bool | None = None,
) -> None:
    """An edited order not credited yet earns what the edited order earns."""
    previous = order.cashback_amount
    breakdown = await _apply_snapshot(session, shop, order, snapshot, received_at=received_at)
    if breakdown.credit_payments_unknown and order.cashback_amount > 0:
        # Paid with credit again, by an amount not read yet: a person looks before credit.
        reason = WAITING_FOR_PAYMENTS
        if payments_readable is None:
            payments_readable = credit_sync.has_admin_access(shop)
        if payments_readable:
            defer_job(session, READ_PAYMENTS_JOB, order.id, job_id=read_payments_job_id(order.id))
        else:
            reason = PAYMENTS_NEED_REVIEW
        if reason not in order.hold_reasons:
            order.hold_reasons = [*order.hold_reasons, reason]
        await lifecycle.transition(session, order, OrderStatus.held, reason=reason)
    if order.award_amount == previous:  # not adjusted by a reviewer: follows the calculation
        order.award_amount = order.cashback_amount
    if order.cashback_amount == 0:
        await lifecycle.transition(
            session, order, OrderStatus.rejected, reason="no cashback after the order was edited"
        )
    elif order.cashback_amount != previous:
        audit_service.record(
            session,
            shop_id=shop.id,
            actor=SYSTEM,
            action="order.recalculated",
            subject_type="order",
            subject_id=order.id,
            before={"cashback_amount": format_minor(previous, order.currency)},
            after={"cashback_amount": format_minor(order.cashback_amount, order.currency)},
            reason="order edited",
        )


async def customer_appeared(
    session: AsyncSession, shop: Shop, customer: PlatformCustomer
) -> list[int]:
    """A new or updated customer account: orders waiting for it (matched by email) are
    linked and evaluated in the shop's current mode. Returns their ids. An account in good
    standing now releases its orders held for its standing alone (`release_verified`)."""
    customer_id = await ledger_service.upsert_customer(session, shop.id, customer)
    await release_verified(session, shop, customer_id)
    if not customer.email:
        return []
    waiting = list(
        await session.scalars(
            select(Order)
            .where(
                Order.shop_id == shop.id,
                Order.status == OrderStatus.awaiting_customer,
                func.lower(Order.email) == customer.email.lower(),
            )
            .order_by(Order.id)
            .with_for_update()
        )
    )
    for order in waiting:
        order.customer_id = customer_id
        order.customer_external_id = customer.external_id
        await evaluate(session, shop, order)
    return [order.id for order in waiting]


def with_payments(snapshot: PlatformOrder, payments: dict[str, Any] | None) -> PlatformOrder:
    """The snapshot with its credit payments filled in from what Shopify's transactions said,
    when those were read for the same order total (an edit that changes it reads them again)."""
    if snapshot.paid_with_credit_amount is not None or not payments:
        return snapshot
    if payments.get("total") != snapshot.total_amount:
        return snapshot
    credit = int(payments["gift_card"]) + int(payments["store_credit"])
    return replace(snapshot, paid_with_credit_amount=credit)


async def release_verified(session: AsyncSession, shop: Shop, customer_id: int) -> list[int]:
    """The customer's account is in good standing (as stored now): its orders held only by
    the `unverified_customer` rule are evaluated again, every other hold rule still applying
    (so one may be held again, for another reason). Returns their ids."""
    if account_problem(*await ledger_service.account_standing(session, customer_id)):
        return []
    held = await session.scalars(
        select(Order)
        .where(
            Order.shop_id == shop.id,
            Order.customer_id == customer_id,
            Order.status == OrderStatus.held,
        )
        .order_by(Order.id)
        .with_for_update()
    )
    released = [order for order in held if held_only_for_account(order.hold_reasons)]
    for order in released:
        audit_service.record(
            session,
            shop_id=shop.id,
            actor=SYSTEM,
            action="order.released",
            subject_type="order",
            subject_id=order.id,
            before={"status": OrderStatus.held, "hold_reasons": order.hold_reasons},
            after={"hold_reasons": []},
            reason="customer account verified",
        )
        order.hold_reasons = []
        await evaluate(session, shop, order)
    return [order.id for order in released]


def _is_stale(order: Order, snapshot: PlatformOrder) -> bool:
    return (
        order.source_updated_at is not None
        and snapshot.updated_at is not None
        and snapshot.updated_at < order.source_updated_at
    )


async def _apply_snapshot(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    snapshot: PlatformOrder,
    *,
    received_at: datetime,
    fresh: bool = False,
) -> Breakdown:
    """Store the snapshot's facts and its calculation on the order (`fresh`: the order was
    inserted by this transaction, so it has no lines to replace)."""
    snapshot = with_payments(snapshot, order.payments)
    program, rules = await _program(session, shop.id)
    breakdown = await calculate_for_shop(session, shop, snapshot, rules)
    order.name = snapshot.name
    order.email = snapshot.email
    order.financial_status = snapshot.financial_status
    order.test = snapshot.test
    order.cancelled_at = snapshot.cancelled_at
    order.source_updated_at = snapshot.updated_at
    order.total_amount = snapshot.total_amount
    order.eligible_amount = breakdown.eligible_amount
    order.cashback_amount = breakdown.cashback_amount
    order.program_version_id = program.id
    order.snapshot = snapshot_to_json(snapshot)
    if snapshot.paid and order.paid_received_at is None:
        order.paid_received_at = received_at
    if snapshot.customer is not None:
        order.customer_external_id = snapshot.customer.external_id
        order.customer_id = await ledger_service.upsert_customer(
            session, shop.id, snapshot.customer
        )
    rows = line_rows(snapshot, breakdown)
    digest = lines_digest(rows)
    if digest != order.lines_digest:  # paid after created, the lines are the same: kept
        if not fresh:
            await session.execute(delete(OrderLine).where(OrderLine.order_id == order.id))
        pending = uow_of(session).get(PendingLines)
        if pending is not None:  # a batch: written with the batch's other lines
            pending.rows.extend({"order_id": order.id} | row for row in rows)
        else:
            session.add_all(OrderLine(order_id=order.id, **row) for row in rows)
        order.lines_digest = digest
    order.last_error = None
    return breakdown


@dataclass
class PendingLines(HeldRows):
    """A batch's new order lines, as rows rather than ORM objects, written together (one
    statement)."""

    batched = True

    rows: list[dict[str, Any]] = field(default_factory=list)

    def write(self, session: Session) -> None:
        rows, self.rows = self.rows, []
        if rows:
            session.execute(_INSERT_LINES, rows)


_INSERT_LINES = insert(cast(Table, OrderLine.__table__))  # Core: no ORM object per line


@dataclass
class BatchPrograms(Part):
    """Each shop's program, read once for a batch of orders rather than once per order."""

    batched = True
    by_shop: dict[int, tuple[ProgramVersion, Program]] = field(default_factory=dict)


async def _program(session: AsyncSession, shop_id: int) -> tuple[ProgramVersion, Program]:
    held = uow_of(session).get(BatchPrograms)
    cache = None if held is None else held.by_shop
    if cache is not None and shop_id in cache:
        return cache[shop_id]
    version = await current_program(session, shop_id)
    found = (version, rules_of(version))
    if cache is not None:
        cache[shop_id] = found
    return found


async def calculate_for_shop(
    session: AsyncSession, shop: Shop, snapshot: PlatformOrder, program: Program
) -> Breakdown:
    """Calculate with the shop's catalog facts and timezone (campaign windows are local)."""
    enriched = await catalog_service.enrich(session, shop.id, snapshot)
    return calculate(enriched, program, timezone=ZoneInfo(shop.timezone))


def line_rows(snapshot: PlatformOrder, breakdown: Breakdown) -> list[dict[str, Any]]:
    """One stored line per line of the breakdown (shipping too, when the program counts it)."""
    by_id = {line.external_id: line for line in snapshot.lines}
    shipping = PlatformLine(SHIPPING_LINE_ID, "Shipping", 1, snapshot.shipping_amount, 0)
    rows = []
    for result in breakdown.lines:
        line = by_id.get(result.external_id, shipping)
        rows.append(
            {
                "external_id": result.external_id,
                "product_id": line.product_id,
                "variant_id": line.variant_id,
                "sku": line.sku,
                "vendor": line.vendor,
                "title": line.title[:512],
                "quantity": line.quantity,
                "unit_price": line.unit_price,
                "discount_amount": line.discount_amount,
                "gift_card": line.gift_card,
                "eligible_amount": result.eligible_amount,
                "rate": result.rate,
                "cashback_amount": result.cashback_amount,
                "reason": result.reason,
                "rate_source": result.rate_source,
                "campaigns": list(result.campaigns),
            }
        )
    return rows


def lines_digest(rows: list[dict[str, Any]]) -> str:
    """Equal for equal lines, field by field (rates as their exact decimal text)."""
    return hashlib.blake2b(orjson.dumps(rows, default=str), digest_size=16).hexdigest()


async def evaluate(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    *,
    zero_reason: str | None = None,
    check_holds: bool = True,
    actor: Actor = SYSTEM,
    payments_readable: bool | None = None,
) -> None:
    """Decide what happens to an undecided order, from what is stored about it. A released
    order comes back with `check_holds=False`: a person has looked at it already. Whether
    Shopify's transactions can be read (`payments_readable`) comes from the shop unless the
    caller found out already."""
    if order.cancelled_at is not None:
        await lifecycle.transition(session, order, OrderStatus.rejected, reason="order cancelled")
    elif order.paid_received_at is None:
        await lifecycle.transition(session, order, OrderStatus.awaiting_payment)
    elif order.financial_status in _NOT_CREDITED_FINANCIAL_STATUSES:
        why = _NOT_CREDITED_FINANCIAL_STATUSES[order.financial_status]
        await lifecycle.transition(session, order, OrderStatus.not_eligible, reason=why)
    elif order.cashback_amount == 0:
        reason = zero_reason or "no cashback earned"
        await lifecycle.transition(session, order, OrderStatus.not_eligible, reason=reason)
    elif await _payments_unknown(session, shop, order):
        if payments_readable is None:
            payments_readable = credit_sync.has_admin_access(shop)
        if not payments_readable:  # nobody can read them: a person decides
            order.hold_reasons = [PAYMENTS_NEED_REVIEW]
            await lifecycle.transition(
                session, order, OrderStatus.held, reason=PAYMENTS_NEED_REVIEW
            )
        else:  # not credited on a guess: evaluated again once they are read
            await lifecycle.transition(
                session, order, OrderStatus.received, reason=WAITING_FOR_PAYMENTS
            )
            defer_job(session, READ_PAYMENTS_JOB, order.id, job_id=read_payments_job_id(order.id))
            return  # refunds wait for the decision
    elif order.customer_id is None:
        await lifecycle.transition(session, order, OrderStatus.awaiting_customer)
    elif check_holds and (reasons := await _review_reasons(session, shop, order)):
        order.hold_reasons = reasons
        await lifecycle.transition(session, order, OrderStatus.held, reason="; ".join(reasons))
    elif shop.processing_mode == ProcessingMode.manual:
        await lifecycle.transition(session, order, OrderStatus.pending, actor=actor)
    else:
        await award(session, shop, order, order.cashback_amount, actor=actor)
        return  # award applied any waiting refunds
    await apply_waiting_refunds(session, shop, order)


async def apply_waiting_refunds(session: AsyncSession, shop: Shop, order: Order) -> None:
    """Refunds that arrived before the order was decided apply once it is."""
    if await refunds.has_waiting(session, shop.id, order.external_id):
        await refunds.apply_pending_refunds(session, shop, order)


async def _payments_unknown(session: AsyncSession, shop: Shop, order: Order) -> bool:
    """The program leaves out what gift cards and store credit paid, and how much they paid
    for this order is not known yet."""
    if order.snapshot is None or order.snapshot.get("paid_with_credit_amount", 0) is not None:
        return False
    _, program = await _program(session, shop.id)
    return program.exclude_credit_payments


async def _review_reasons(session: AsyncSession, shop: Shop, order: Order) -> list[str]:
    """Why a person should look at the order first: the shop's hold rules, and a B2B order
    whose credit has no company location to go to."""
    reasons = await _hold_reasons(session, shop, order)
    snapshot = order.snapshot or {}
    if snapshot.get("b2b") and not snapshot.get("company_location_id"):
        reasons.append(B2B_WITHOUT_LOCATION)
    return reasons


async def _hold_reasons(session: AsyncSession, shop: Shop, order: Order) -> list[str]:
    rules = HoldRules.model_validate(shop.hold_rules)
    if rules == _NO_HOLDS:
        return []
    await session.flush()  # the customer's other orders, as changed so far in a batch
    assert order.customer_id is not None and order.snapshot is not None
    snapshot = await catalog_service.enrich(session, shop.id, snapshot_from_json(order.snapshot))
    standing = (
        await ledger_service.account_standing(session, order.customer_id)
        if rules.unverified_customer
        else (None, None)
    )
    recent_orders, recent_cashback = await ledger_service.recent_credits(
        session, order.customer_id, since=datetime.now(UTC) - timedelta(hours=24)
    )
    earlier_paid = await session.scalar(
        select(Order.id)
        .where(
            Order.shop_id == shop.id,
            Order.customer_id == order.customer_id,
            Order.id != order.id,
            Order.paid_received_at.is_not(None),
        )
        .limit(1)
    )
    return hold_reasons(
        rules,
        HoldFacts(
            currency=order.currency,
            cashback_amount=order.cashback_amount,
            total_amount=order.total_amount,
            lines=snapshot.lines,
            first_order=earlier_paid is None,
            b2b=snapshot.b2b,
            recent_credited_orders=recent_orders,
            recent_cashback=recent_cashback,
            account_problem=account_problem(*standing),
        ),
    )


def waits_for_payments(order: Order) -> bool:
    """The order's credit payments are to be read before it can go on."""
    unknown = (
        order.snapshot is not None and order.snapshot.get("paid_with_credit_amount", 0) is None
    )
    return unknown and (order.status in UNDECIDED or order.status in REDUCIBLE)


async def payments_read(
    session: AsyncSession, shop: Shop, order: Order, payments: OrderPayments | None
) -> None:
    """Shopify's transactions said what gift cards and store credit paid (None: they cannot
    be read, the shop gave no Admin API access): calculate again and go on from there."""
    assert order.snapshot is not None
    snapshot = snapshot_from_json(order.snapshot)
    if payments is not None:
        order.payments = {
            "total": snapshot.total_amount,
            "gift_card": payments.gift_card,
            "store_credit": payments.store_credit,
            "read_at": datetime.now(UTC).isoformat(),
        }
    received_at = order.paid_received_at or datetime.now(UTC)
    if order.status in UNDECIDED:
        breakdown = await _apply_snapshot(session, shop, order, snapshot, received_at=received_at)
        await evaluate(
            session,
            shop,
            order,
            zero_reason=", ".join(breakdown.reasons) or None,
            payments_readable=payments is not None,
        )
    elif order.status in REDUCIBLE:
        await _recalculate_edited(
            session,
            shop,
            order,
            snapshot,
            received_at=received_at,
            payments_readable=payments is not None,
        )


async def payments_unreadable(
    session: AsyncSession, order_id: int, error: str, *, alert: bool
) -> None:
    """Shopify did not answer this time: the order keeps waiting (the sweeper asks again), with
    the error shown, and the merchant is told once (`alert`) when the reads keep failing."""
    order = await lifecycle.lock_order(session, order_id)
    if order is None or not waits_for_payments(order):
        return
    order.last_error = f"cannot read the order's transactions from Shopify: {error}"[:4000]
    if alert:
        await lifecycle.alert(session, order, "payments_unreadable", order.last_error)


async def orders_waiting_for_payments(
    session: AsyncSession, older_than: datetime, limit: int
) -> list[int]:
    """Orders waiting for their payments whose read has not moved since `older_than`."""
    result = await session.execute(
        select(Order.id)
        .where(
            Order.status == OrderStatus.received,
            Order.status_reason == WAITING_FOR_PAYMENTS,
            Order.updated_at < older_than,
        )
        .order_by(Order.updated_at)
        .limit(limit)
    )
    return list(result.scalars())


async def award(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    amount: int,
    *,
    actor: Actor = SYSTEM,
    action: str = "order.status_changed",
    details: dict[str, Any] | None = None,
) -> None:
    """Credit `amount` now, or schedule it for the end of the shop's award delay."""
    order.award_amount = amount
    if shop.award_delay_days > 0:
        paid_at = order.paid_received_at or datetime.now(UTC)
        order.award_at = paid_at + timedelta(days=shop.award_delay_days)
        if order.award_at > datetime.now(UTC):
            await lifecycle.transition(
                session, order, OrderStatus.scheduled, actor=actor, action=action, details=details
            )
            await apply_waiting_refunds(session, shop, order)
            return
    await credit_order(session, shop, order, actor=actor, action=action, details=details)
    await apply_waiting_refunds(session, shop, order)


async def credit_order(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    *,
    actor: Actor = SYSTEM,
    action: str = "order.status_changed",
    details: dict[str, Any] | None = None,
) -> None:
    """Write the order's credit (its approved amount) and mark it processed; the order row
    must be locked by the caller."""
    assert order.customer_id is not None
    amount = order.cashback_amount if order.award_amount is None else order.award_amount
    # Refunds that reduced the cashback before credit: the credit covers what is left.
    if order.status in REDUCIBLE:
        order.lines_digest = None  # the lines no longer are the calculation's
        await session.execute(
            update(OrderLine)
            .where(
                OrderLine.order_id == order.id,
                (OrderLine.refunded_quantity > 0) | (OrderLine.reversed_amount > 0),
            )
            .values(
                quantity=OrderLine.quantity - OrderLine.refunded_quantity,
                cashback_amount=OrderLine.cashback_amount - OrderLine.reversed_amount,
                refunded_quantity=0,
                reversed_amount=0,
            )
        )
    _, program = await _program(session, shop.id)
    expiry_days = program.credit_expiry_days  # the program's when credited, kept for good
    expires_at = (
        None
        if expiry_days is None
        else credits.expires_at(datetime.now(UTC), expiry_days, ZoneInfo(shop.timezone))
    )
    entry_id = await ledger_service.credit(
        session,
        shop_id=order.shop_id,
        customer_id=order.customer_id,
        order_id=order.id,
        amount=amount,
        currency=order.currency,
        idempotency_key=f"order:{order.id}:credit",
        description=f"Cashback for order {order.name or order.external_id}",
        expires_at=expires_at,
    )
    if entry_id is None:
        logger.warning("order %s already had its credit; not writing it twice", order.id)
    else:
        await lifecycle.ledger_entry_written(
            session, shop, order, entry_id, amount, expires_at=expires_at
        )
        await rollup.bump(session, shop.id, order.id, processed=1, cashback_issued=amount)
    await lifecycle.transition(
        session, order, OrderStatus.processed, actor=actor, action=action, details=details
    )


async def award_due(session: AsyncSession, order_id: int) -> OrderStatus | None:
    """Credit a scheduled order whose award date has come (the sweeper rings for these)."""
    order = await lifecycle.lock_order(session, order_id)
    now = datetime.now(UTC)
    if order is None or order.status != OrderStatus.scheduled or (order.award_at or now) > now:
        return None
    shop = await session.get_one(Shop, order.shop_id)
    await credit_order(session, shop, order, action="order.awarded")
    await apply_waiting_refunds(session, shop, order)
    return OrderStatus(order.status)


async def due_awards(session: AsyncSession, now: datetime, limit: int) -> list[int]:
    result = await session.execute(
        select(Order.id)
        .where(Order.status == OrderStatus.scheduled, Order.award_at <= now)
        .order_by(Order.award_at)
        .limit(limit)
    )
    return list(result.scalars())


async def stale_received_orders(
    session: AsyncSession, older_than: datetime, limit: int
) -> list[int]:
    result = await session.execute(
        select(Order.id)
        .where(
            Order.status == OrderStatus.received,
            Order.status_reason.is_distinct_from(WAITING_FOR_PAYMENTS),  # re-driven on their own
            Order.updated_at < older_than,
        )
        .order_by(Order.updated_at)
        .limit(limit)
    )
    return list(result.scalars())


async def evaluate_order(session: AsyncSession, order_id: int) -> OrderStatus | None:
    """Evaluate a stored order that is still `received` (re-driven by the sweeper)."""
    order = await lifecycle.lock_order(session, order_id)
    if order is None or order.status != OrderStatus.received:
        return None
    shop = await session.get_one(Shop, order.shop_id)
    await evaluate(session, shop, order)
    return OrderStatus(order.status)
