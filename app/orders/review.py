"""Review actions on one order: approve, reject, hold, release, process. Each locks the order
row, so of two reviewers acting at once exactly one wins and the other gets a 409."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import Actor
from app.core.errors import Conflict, NotFound, ProblemError
from app.core.money import format_minor, to_minor
from app.core.snapshots import snapshot_from_json
from app.orders import lifecycle as order_lifecycle
from app.orders import service
from app.orders.models import Order
from app.orders.state import OrderStatus, can_transition
from app.program.service import current_program
from app.shops.models import Shop


class OrderNotFound(NotFound):
    code = "order_not_found"


class WrongStatus(Conflict):
    code, title = "order_status_conflict", "The order's status does not allow this"


class VersionMismatch(ProblemError):
    status, code, title = 412, "version_mismatch", "The order changed since you read it"


class InvalidAmount(ProblemError):
    status, code, title = 422, "invalid_amount", "The amount is not allowed"


class NoteRequired(ProblemError):
    status, code, title = 422, "note_required", "A note is required"


class CalculationChanged(Conflict):
    code, title = "calculation_changed", "The calculated amount changed"


class PaymentsUnknown(Conflict):
    code, title = "payments_unknown", "What gift cards or store credit paid is not known yet"


class CustomerRequired(Conflict):
    code, title = "customer_required", "The order has no customer account yet"


APPROVABLE = frozenset({OrderStatus.pending, OrderStatus.held})
REJECTABLE = frozenset(
    {
        OrderStatus.pending,
        OrderStatus.held,
        OrderStatus.scheduled,
        OrderStatus.awaiting_customer,
        OrderStatus.failed,
    }
)
HOLDABLE = frozenset(
    {OrderStatus.pending, OrderStatus.scheduled, OrderStatus.awaiting_customer, OrderStatus.failed}
)
PROCESSABLE = frozenset({OrderStatus.failed, OrderStatus.awaiting_customer})


async def locked_order(
    session: AsyncSession, shop: Shop, order_id: int, if_match: int | None = None
) -> Order:
    order = await session.scalar(
        select(Order).where(Order.id == order_id, Order.shop_id == shop.id).with_for_update()
    )
    if order is None:
        raise OrderNotFound(f"order {order_id} not found")
    if if_match is not None and if_match != order.version:
        raise VersionMismatch(
            f"the order is at version {order.version}, not {if_match}",
            version=order.version,
            current_status=order.status,
        )
    return order


def _require(order: Order, allowed: frozenset[OrderStatus], action: str) -> None:
    if order.status not in allowed:
        raise WrongStatus(
            f"cannot {action} an order that is {order.status}",
            current_status=order.status,
            version=order.version,
        )


def _minor(amount: Decimal, currency: str) -> int:
    try:
        return to_minor(amount, currency)
    except ValueError as exc:
        raise InvalidAmount(str(exc)) from exc


async def approve(
    session: AsyncSession,
    shop: Shop,
    actor: Actor,
    order_id: int,
    *,
    amount: Decimal | None = None,
    note: str | None = None,
    if_match: int | None = None,
) -> Order:
    order = await locked_order(session, shop, order_id, if_match)
    _require(order, APPROVABLE, "approve")
    credit = order.cashback_amount if amount is None else _minor(amount, order.currency)
    if credit <= 0:
        raise InvalidAmount("the amount must be greater than zero")
    if shop.approval_ceiling is not None and credit > shop.approval_ceiling:
        ceiling = format_minor(shop.approval_ceiling, order.currency)
        raise InvalidAmount(f"the amount is above the shop's approval ceiling of {ceiling}")
    if credit != order.cashback_amount and not (note and note.strip()):
        raise NoteRequired("say why when the amount differs from the calculated one")
    if order.customer_id is None:
        raise CustomerRequired("the order has no customer to credit")
    order.review_note = note
    details: dict[str, Any] = {"amount": format_minor(credit, order.currency)}
    if credit != order.cashback_amount:  # the weekly audit lists who adjusted how much, and why
        details["calculated_amount"] = format_minor(order.cashback_amount, order.currency)
        details["note"] = note
    await service.award(
        session, shop, order, credit, actor=actor, action="order.approved", details=details
    )
    return order


async def reject(
    session: AsyncSession,
    shop: Shop,
    actor: Actor,
    order_id: int,
    *,
    reason: str,
    if_match: int | None = None,
) -> Order:
    order = await locked_order(session, shop, order_id, if_match)
    _require(order, REJECTABLE, "reject")
    await order_lifecycle.transition(
        session, order, OrderStatus.rejected, reason=reason, actor=actor, action="order.rejected"
    )
    return order


async def hold(
    session: AsyncSession,
    shop: Shop,
    actor: Actor,
    order_id: int,
    *,
    reason: str,
    if_match: int | None = None,
) -> Order:
    order = await locked_order(session, shop, order_id, if_match)
    _require(order, HOLDABLE, "hold")
    order.hold_reasons = [*order.hold_reasons, reason]
    await order_lifecycle.transition(
        session, order, OrderStatus.held, reason=reason, actor=actor, action="order.held"
    )
    return order


async def release(
    session: AsyncSession, shop: Shop, actor: Actor, order_id: int, *, if_match: int | None = None
) -> Order:
    """Back through evaluation in the shop's current mode, hold rules aside."""
    order = await locked_order(session, shop, order_id, if_match)
    _require(order, frozenset({OrderStatus.held}), "release")
    order.hold_reasons = []
    # Released: pending in manual mode, credited (or scheduled) in automatic mode.
    await service.evaluate(session, shop, order, check_holds=False, actor=actor)
    return order


async def calculated_amount(session: AsyncSession, shop: Shop, order: Order) -> int:
    """The order's cashback under the current program, from its stored snapshot. Not known
    while part of the order was paid with credit of an amount not read yet: a person then
    approves the amount instead (or waits for the read)."""
    if order.snapshot is None:
        return order.cashback_amount
    program = await current_program(session, shop.id)
    snapshot = service.with_payments(snapshot_from_json(order.snapshot), order.payments)
    breakdown = await service.calculate_for_shop(session, shop, snapshot, program.rules_model)
    if breakdown.credit_payments_unknown:
        raise PaymentsUnknown(
            "part of the order was paid with a gift card or store credit, and how much is not "
            "known yet; the service reads it from Shopify when it can"
        )
    return breakdown.cashback_amount


async def process(
    session: AsyncSession,
    shop: Shop,
    actor: Actor,
    order_id: int,
    *,
    expected_amount: Decimal | None,
    if_match: int | None = None,
) -> tuple[Order, int, bool]:
    """The "Process cashback" button for failed and awaiting-customer orders: without an
    expected amount, only says what would be credited; with it, credits that amount unless
    the calculation changed. Returns (order, calculated amount, processed)."""
    order = await locked_order(session, shop, order_id, if_match)
    _require(order, PROCESSABLE, "process")
    calculated = await calculated_amount(session, shop, order)
    if expected_amount is None:
        return order, calculated, False
    if _minor(expected_amount, order.currency) != calculated:
        raise CalculationChanged(
            f"the calculated amount is now {format_minor(calculated, order.currency)}",
            calculated_amount=format_minor(calculated, order.currency),
        )
    if order.customer_id is None:
        raise CustomerRequired("link a customer account before processing this order")
    if calculated <= 0:
        raise InvalidAmount("this order earns no cashback")
    order.cashback_amount = calculated
    order.last_error = None
    details = {"amount": format_minor(calculated, order.currency)}
    await service.award(
        session,
        shop,
        order,
        calculated,
        actor=actor,
        action="order.processed_manually",
        details=details,
    )
    return order, calculated, True


async def bulk(
    session: AsyncSession,
    order_ids: list[int],
    act: Callable[[int], Awaitable[Order]],
) -> list[dict[str, Any]]:
    """Apply `act` to each order in its own savepoint: a result per order, never
    all-or-nothing."""
    results: list[dict[str, Any]] = []
    for order_id in order_ids:
        try:
            async with session.begin_nested():
                order = await act(order_id)
            results.append({"id": str(order_id), "ok": True, "status": order.status})
        except ProblemError as exc:
            results.append(
                {
                    "id": str(order_id),
                    "ok": False,
                    "code": exc.code,
                    "detail": exc.detail,
                    "status": exc.extra.get("current_status"),
                }
            )
    return results


def allowed_actions(order: Order) -> list[str]:
    """What a reviewer may do with the order now (the frontend's buttons)."""
    status = OrderStatus(order.status)
    actions = []
    if status in APPROVABLE and can_transition(status, OrderStatus.processed):
        actions.append("approve")
    if status in REJECTABLE:
        actions.append("reject")
    if status in HOLDABLE:
        actions.append("hold")
    if status == OrderStatus.held:
        actions.append("release")
    if status in PROCESSABLE:
        actions.append("process")
    return actions
