"""Refunds and cancellations: credit follows the order for its whole life.

A refund is stored once per refund id. After credit it takes credit back with a reversal
entry; before credit (pending, held, scheduled) it reduces the cashback instead, or rejects
the order when nothing is left; before the order is decided at all, it waits and is applied
when the order is. Every application runs under the order's row lock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit_service
from app.audit.service import SYSTEM
from app.core.money import format_minor
from app.core.snapshots import PlatformRefund
from app.ledger import service as ledger_service
from app.ledger.credits import CreditLeft, reversal_within
from app.ledger.models import EntryKind, LedgerEntry
from app.metrics import rollup
from app.notifications import service as notification_service
from app.orders import lifecycle, prefetch
from app.orders.models import Order, OrderLine
from app.orders.refund_models import Refund
from app.orders.reversal import LineState, line_reversals, proportional_reversal, round_half_up
from app.orders.state import CREDITED, REDUCIBLE, OrderStatus
from app.program.calculator import SHIPPING_LINE_ID, allocate
from app.shops.models import Shop


async def record_refund(session: AsyncSession, shop: Shop, refund: PlatformRefund) -> bool:
    """Store the refund (once per refund id) and apply it if its order is decided."""
    inserted = await session.execute(
        insert(Refund)
        .values(
            shop_id=shop.id,
            external_id=refund.external_id,
            order_external_id=refund.order_external_id,
            lines=[{"line_id": line, "quantity": qty} for line, qty in refund.lines],
            adjustment_amount=refund.adjustment_amount,
            shipping_amount=refund.shipping_amount,
            amount_currency=refund.amount_currency,
            amount_in_currency=refund.amount_in_currency,
        )
        .on_conflict_do_nothing(index_elements=[Refund.shop_id, Refund.external_id])
        .returning(Refund.id)
    )
    if inserted.scalar_one_or_none() is None:
        return False  # a redelivery: already stored, and applied if it could be
    prefetch.refund_stored(session, shop.id, refund.order_external_id)
    order = await lifecycle.find_order(session, shop.id, refund.order_external_id, lock=True)
    if order is not None:
        await apply_pending_refunds(session, shop, order)
    return True


async def apply_pending_refunds(session: AsyncSession, shop: Shop, order: Order) -> None:
    """Apply the order's stored refunds that are not applied yet (order row locked)."""
    await session.flush()  # lines just written must be visible to the queries below
    await session.execute(
        update(Refund)
        .where(
            Refund.shop_id == shop.id,
            Refund.order_external_id == order.external_id,
            Refund.order_id.is_(None),
        )
        .values(order_id=order.id)
    )
    status = OrderStatus(order.status)
    if status not in CREDITED and status not in REDUCIBLE:
        return  # waits until the order is decided
    refunds = list(
        await session.scalars(
            select(Refund)
            .where(Refund.order_id == order.id, Refund.applied_at.is_(None))
            .order_by(Refund.id)
            .with_for_update()
        )
    )
    for refund in refunds:
        if OrderStatus(order.status) in CREDITED:
            refund.effect = await _reverse(session, shop, order, refund)
        elif OrderStatus(order.status) in REDUCIBLE:
            refund.effect = await _reduce(session, shop, order, refund)
        else:
            refund.effect = {"ignored": f"order is {order.status}"}
        refund.applied_at = datetime.now(UTC)


async def _lines(session: AsyncSession, order: Order) -> list[OrderLine]:
    return list(
        await session.scalars(
            select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)
        )
    )


def _refunded_quantities(refund: Refund) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for line in refund.lines:
        quantities[line["line_id"]] = quantities.get(line["line_id"], 0) + int(line["quantity"])
    return quantities


async def _credit_entry(session: AsyncSession, order: Order) -> tuple[LedgerEntry, CreditLeft]:
    """The order's credit, locked against a redemption or expiry taking from it meanwhile,
    and what is left of it."""
    [entry] = await ledger_service.lock_credits(session, LedgerEntry.order_id == order.id)
    [left] = await ledger_service.credits_left(session, [entry])
    return entry, left


async def _reversed_so_far(session: AsyncSession, order: Order) -> int:
    total = await session.scalar(
        select(func.coalesce(-func.sum(LedgerEntry.amount), 0)).where(
            LedgerEntry.order_id == order.id, LedgerEntry.kind == EntryKind.reversal
        )
    )
    return int(total or 0)


async def _so_far(session: AsyncSession, order: Order) -> dict[str, int]:
    """What the order's applied refunds add up to, by effect: money refunded without lines
    and shipping refunded, and what each took back."""
    applied = await session.scalars(
        select(Refund.effect).where(Refund.order_id == order.id, Refund.applied_at.is_not(None))
    )
    totals = dict.fromkeys(_CUMULATIVE, 0)
    for effect in applied:
        for key in _CUMULATIVE:
            totals[key] += int((effect or {}).get(key, 0))
    return totals


_CUMULATIVE = (
    "amount_only_refunded",
    "amount_only_reversed",
    "shipping_refunded",
    "shipping_reversed",
)


def _valued_amount_only(order: Order, refund: Refund) -> tuple[int, str | None]:
    """Money the refund gave back without lines, in shop money: as stored, or valued from the
    customer's currency with the order's own rate (its total in shop money over its total in
    that currency). Returns (amount, why part of it could not be valued)."""
    if refund.amount_in_currency is None or refund.amount_currency is None:
        return refund.adjustment_amount, None
    moved, currency = refund.amount_in_currency, refund.amount_currency
    snapshot = order.snapshot or {}
    presentment_total = snapshot.get("presentment_total_amount")
    if currency == order.currency:
        valued = moved
    elif currency == snapshot.get("presentment_currency") and presentment_total:
        valued = round_half_up(moved * order.total_amount, int(presentment_total))
    else:
        why = (
            f"{format_minor(moved, currency)} {currency} refunded could not be valued in "
            f"{order.currency}: the order was not paid in {currency}"
        )
        return refund.adjustment_amount, why
    return max(refund.adjustment_amount + valued - refund.shipping_amount, 0), None


def _take_back_shipping(
    lines: list[OrderLine], credits: list[int], refund: Refund, so_far: dict[str, int]
) -> int:
    """Refunded shipping takes back only what shipping earned: nothing, unless the program
    counted shipping, and then that line's share in proportion, cumulatively."""
    for line, credit in zip(lines, credits, strict=True):
        if line.external_id == SHIPPING_LINE_ID:
            return proportional_reversal(
                credit,
                line.eligible_amount,
                so_far["shipping_refunded"],
                refund.shipping_amount,
                so_far["shipping_reversed"],
            )
    return 0


def _take_back_lines(lines: list[OrderLine], credits: list[int], refund: Refund) -> int:
    """Record the refund's quantities on the lines; returns what they give back now, from
    each line's share of the credit (or of the cashback, before credit)."""
    states = [
        LineState(li.external_id, li.quantity, credit, li.refunded_quantity, li.reversed_amount)
        for li, credit in zip(lines, credits, strict=True)
    ]
    by_line = line_reversals(states, _refunded_quantities(refund))
    total = 0
    for line in lines:
        if line.external_id in by_line:
            line.refunded_quantity, taken = by_line[line.external_id]
            line.reversed_amount += taken
            total += taken
    return total


async def _take_back(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    credit_entry: LedgerEntry,
    amount: int,
    *,
    idempotency_key: str,
    description: str,
    target: OrderStatus,
    reason: str,
) -> None:
    """Append the reversal entry, tell who must know, and move the order on."""
    entry_id = await ledger_service.reverse(
        session,
        shop=shop,
        credit=credit_entry,
        amount=amount,
        idempotency_key=idempotency_key,
        description=description,
    )
    if entry_id is not None:
        await lifecycle.ledger_entry_written(session, shop, order, entry_id, -amount)
        await rollup.bump(session, shop.id, order.id, reversed=amount)
    await lifecycle.transition(
        session,
        order,
        target,
        reason=reason,
        action="order.reversed",
        details={"amount": format_minor(amount, order.currency)},
    )


async def _reverse(
    session: AsyncSession, shop: Shop, order: Order, refund: Refund
) -> dict[str, Any]:
    """Take back credit: by line, cumulatively, and in proportion for amount-only refunds."""
    credit_entry, left = await _credit_entry(session, order)
    credit = credit_entry.amount
    lines = await _lines(session, order)
    shares = allocate(
        credit, [line.cashback_amount for line in lines], [li.external_id for li in lines]
    )
    amount = _take_back_lines(lines, shares, refund)
    order.lines_digest = None  # the lines no longer are the calculation's
    so_far = await _so_far(session, order)
    shipping = _take_back_shipping(lines, shares, refund, so_far)
    refunded, unvalued = _valued_amount_only(order, refund)
    amount_only = proportional_reversal(
        credit,
        order.eligible_amount,
        so_far["amount_only_refunded"],
        refunded,
        so_far["amount_only_reversed"],
    )
    remaining = credit - await _reversed_so_far(session, order)
    wanted = min(amount + shipping + amount_only, remaining)  # never beyond what was credited
    # What expired or was spent is not taken back: a balance never goes below zero.
    amount = reversal_within(left, wanted)
    if amount > 0:
        await _take_back(
            session,
            shop,
            order,
            credit_entry,
            amount,
            idempotency_key=f"refund:{refund.external_id}",
            description=f"Refund {refund.external_id} of order {order.name or order.external_id}",
            target=OrderStatus.reversed if wanted == remaining else OrderStatus.partially_reversed,
            reason=f"refund {refund.external_id}",
        )
    kept = {"kept_expired_or_spent": wanted - amount} if wanted > amount else {}
    return await _effect(
        session,
        shop,
        order,
        refund,
        {"reversed": amount} | kept,
        refunded=refunded,
        amount_only=amount_only,
        shipping=shipping,
        unvalued=unvalued,
    )


async def _reduce(
    session: AsyncSession, shop: Shop, order: Order, refund: Refund
) -> dict[str, Any]:
    """Before credit: the refunded part will not be credited; nothing left rejects the order."""
    lines = await _lines(session, order)
    shares = [li.cashback_amount for li in lines]
    so_far = await _so_far(session, order)
    shipping = _take_back_shipping(lines, shares, refund, so_far)
    removed = _take_back_lines(lines, shares, refund)
    order.lines_digest = None  # the lines no longer are the calculation's
    refunded, unvalued = _valued_amount_only(order, refund)
    amount_only = proportional_reversal(
        order.cashback_amount + removed,
        order.eligible_amount,
        so_far["amount_only_refunded"],
        refunded,
        so_far["amount_only_reversed"],
    )
    removed = min(removed + shipping + amount_only, order.cashback_amount)
    order.cashback_amount -= removed
    if order.award_amount is not None:
        order.award_amount = max(order.award_amount - removed, 0)
    if order.cashback_amount == 0 or order.award_amount == 0:
        await lifecycle.transition(
            session, order, OrderStatus.rejected, reason="order refunded", action="order.rejected"
        )
    return await _effect(
        session,
        shop,
        order,
        refund,
        {"removed_before_credit": removed},
        refunded=refunded,
        amount_only=amount_only,
        shipping=shipping,
        unvalued=unvalued,
    )


async def _effect(
    session: AsyncSession,
    shop: Shop,
    order: Order,
    refund: Refund,
    effect: dict[str, Any],
    *,
    refunded: int,
    amount_only: int,
    shipping: int,
    unvalued: str | None,
) -> dict[str, Any]:
    """What applying the refund did, kept on it (later refunds add up from it). A part that
    could not be valued is kept and shown there, and the merchant is told."""
    effect |= {
        "amount_only_refunded": refunded,
        "amount_only_reversed": amount_only,
        "shipping_refunded": refund.shipping_amount,
        "shipping_reversed": shipping,
    }
    if unvalued is not None:
        effect["unvalued"] = unvalued
        audit_service.record(
            session,
            shop_id=shop.id,
            actor=SYSTEM,
            action="order.refund_unvalued",
            subject_type="order",
            subject_id=order.id,
            after={"refund": refund.external_id},
            reason=unvalued,
        )
        await notification_service.enqueue_alert(
            session,
            shop,
            event_key=f"refund:{refund.id}:unvalued",
            event_type="refund.unvalued",
            payload={
                "order": {"id": str(order.id), "external_id": order.external_id},
                "refund": {"external_id": refund.external_id},
                "detail": unvalued,
            },
        )
    return effect


async def cancel(session: AsyncSession, shop: Shop, order: Order) -> None:
    """A cancelled order: everything credited is taken back; an undecided one is rejected."""
    status = OrderStatus(order.status)
    if status in CREDITED:
        credit_entry, left = await _credit_entry(session, order)
        if left.left > 0:  # what expired or was spent stays so
            await _take_back(
                session,
                shop,
                order,
                credit_entry,
                left.left,
                idempotency_key=f"order:{order.id}:cancel",
                description=f"Order {order.name or order.external_id} cancelled",
                target=OrderStatus.reversed,
                reason="order cancelled",
            )
    elif status not in (OrderStatus.rejected, OrderStatus.reversed):
        await lifecycle.transition(
            session, order, OrderStatus.rejected, reason="order cancelled", action="order.rejected"
        )


async def has_waiting(session: AsyncSession, shop_id: int, order_external_id: str) -> bool:
    known = prefetch.known_waiting(session, shop_id, order_external_id)
    if known is not None:
        return known
    found = await session.scalar(
        select(Refund.id)
        .where(
            Refund.shop_id == shop_id,
            Refund.order_external_id == order_external_id,
            Refund.applied_at.is_(None),
        )
        .limit(1)
    )
    return found is not None
