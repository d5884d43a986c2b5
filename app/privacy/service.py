"""Privacy topics: redact a customer, delete a shop's data, answer a data request."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, literal_column, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from app.core.money import format_minor
from app.inbox.models import WebhookEvent
from app.ledger.models import Customer, LedgerEntry
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from app.shops.models import Shop

REDACTED_BODY = b'{"redacted": true}'


async def redact_customer(
    session: AsyncSession,
    shop: Shop,
    customer_external_id: str | None,
    *,
    email: str | None = None,
    orders_to_redact: Sequence[str] = (),
) -> None:
    """Erase the customer's personal data; amounts, ids and the audit trail stay. What is
    erased: the customer row (when there is one), the orders Shopify lists in
    `orders_to_redact`, the customer's own orders, guest orders under their email, notices
    waiting in the outbox, and handled deliveries that name them or those orders."""
    customer = None
    if customer_external_id is not None:
        customer = await session.scalar(
            select(Customer)
            .where(Customer.shop_id == shop.id, Customer.external_id == customer_external_id)
            .with_for_update()
        )
    emails = {e.lower() for e in (email, customer.email if customer else None) if e}
    if customer is not None:
        customer.email = customer.first_name = customer.last_name = None
    whose: list[ColumnElement[bool]] = [Order.external_id.in_(list(orders_to_redact))]
    if customer is not None:
        whose.append(Order.customer_id == customer.id)
    if emails:  # guest checkouts: no customer account, only the email
        whose.append(Order.customer_id.is_(None) & func.lower(Order.email).in_(emails))
    orders = list(await session.scalars(select(Order).where(Order.shop_id == shop.id, or_(*whose))))
    for order in orders:
        order.email = None
        if order.snapshot:
            order.snapshot = _scrub_snapshot(order.snapshot)
    if customer_external_id is not None:  # notices waiting in the outbox carry the email too
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.shop_id == shop.id,
                OutboxMessage.payload["customer"]["id"].astext == customer_external_id,
            )
            .values(payload=literal_column("jsonb_set(payload, '{customer,email}', 'null'::jsonb)"))
        )
    # Stored deliveries carry the same personal data: replace the handled ones that name the
    # customer or one of the redacted orders.
    markers = {customer_external_id, *emails, *orders_to_redact, *(o.external_id for o in orders)}
    for marker in sorted(m for m in markers if m):
        await session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.shop_id == shop.id,
                WebhookEvent.status != "received",
                func.position(func.convert_to(marker, "UTF8").op("IN")(WebhookEvent.body)) > 0,
            )
            .values(body=REDACTED_BODY)
        )


def _scrub_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    scrubbed = dict(snapshot)
    scrubbed["email"] = None
    if scrubbed.get("customer"):
        scrubbed["customer"] = {
            **scrubbed["customer"],
            "email": None,
            "first_name": None,
            "last_name": None,
        }
    return scrubbed


async def redact_shop(session: AsyncSession, shop: Shop) -> None:
    """Delete everything the service holds for the shop, its ledger included. The ledger is
    erased by the one path the database allows (`erase_shop_ledger`, which logs it in
    `ledger_erasures`); no other statement of any connection can remove a ledger entry."""
    await session.execute(text("SELECT erase_shop_ledger(:shop)"), {"shop": shop.id})
    await session.execute(delete(Shop).where(Shop.id == shop.id))


async def export_customer(
    session: AsyncSession,
    shop: Shop,
    customer_external_id: str | None,
    *,
    orders_requested: Sequence[str] = (),
) -> dict[str, Any] | None:
    """What the service holds about a customer, for a data request: their account, their
    orders and those Shopify lists in `orders_requested` (guest orders included), and their
    ledger. None when the service holds nothing of them."""
    customer = None
    if customer_external_id is not None:
        customer = await session.scalar(
            select(Customer).where(
                Customer.shop_id == shop.id, Customer.external_id == customer_external_id
            )
        )
    whose: list[ColumnElement[bool]] = [Order.external_id.in_(list(orders_requested))]
    if customer is not None:
        whose.append(Order.customer_id == customer.id)
    orders = list(
        await session.scalars(
            select(Order).where(Order.shop_id == shop.id, or_(*whose)).order_by(Order.id)
        )
    )
    if customer is None and not orders:
        return None
    entries: list[LedgerEntry] = []
    if customer is not None:
        entries = list(
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.customer_id == customer.id)
                .order_by(LedgerEntry.id)
            )
        )
    cur = shop.currency
    return {
        "customer": {
            "id": customer.external_id,
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
        }
        if customer is not None
        else {"id": customer_external_id},
        "orders": [
            {
                "id": o.external_id,
                "name": o.name,
                "status": o.status,
                "cashback_amount": format_minor(o.cashback_amount, cur),
                "created_at": o.created_at.isoformat(),
            }
            for o in orders
        ],
        "ledger": [
            {
                "kind": e.kind,
                "amount": format_minor(e.amount, e.currency),
                "currency": e.currency,
                "created_at": e.created_at.isoformat(),
            }
            for e in entries
        ],
    }
