"""Privacy topics: redact a customer, delete a shop's data, answer a data request."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.money import format_minor
from app.ledger.models import Customer, LedgerEntry
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from app.shops.models import Shop
from app.webhooks.models import WebhookEvent

REDACTED_BODY = b'{"redacted": true}'


async def redact_customer(session: AsyncSession, shop: Shop, customer_external_id: str) -> bool:
    """Erase the customer's personal data; amounts, ids and the audit trail stay."""
    customer = await session.scalar(
        select(Customer)
        .where(Customer.shop_id == shop.id, Customer.external_id == customer_external_id)
        .with_for_update()
    )
    if customer is None:
        return False
    markers = [customer_external_id] + ([customer.email] if customer.email else [])
    customer.email = customer.first_name = customer.last_name = None
    orders = list(
        await session.scalars(
            select(Order).where(Order.shop_id == shop.id, Order.customer_id == customer.id)
        )
    )
    for order in orders:
        order.email = None
        if order.snapshot:
            order.snapshot = _scrub_snapshot(order.snapshot)
    # Notices waiting in the outbox carry the customer's email too.
    await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.shop_id == shop.id,
            OutboxMessage.payload["customer"]["id"].astext == customer_external_id,
        )
        .values(payload=literal_column("jsonb_set(payload, '{customer,email}', 'null'::jsonb)"))
    )
    # Stored deliveries carry the same personal data: replace the handled ones that name them.
    for marker in markers:
        await session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.shop_id == shop.id,
                WebhookEvent.status != "received",
                func.position(func.convert_to(marker, "UTF8").op("IN")(WebhookEvent.body)) > 0,
            )
            .values(body=REDACTED_BODY)
        )
    return True


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
    """Delete everything the service holds for the shop, its ledger included."""
    await session.execute(text("SET LOCAL cashback.redacting = 'on'"))
    await session.execute(delete(Shop).where(Shop.id == shop.id))


async def export_customer(
    session: AsyncSession, shop: Shop, customer_external_id: str
) -> dict[str, Any] | None:
    """What the service holds about a customer, for a data request."""
    customer = await session.scalar(
        select(Customer).where(
            Customer.shop_id == shop.id, Customer.external_id == customer_external_id
        )
    )
    if customer is None:
        return None
    orders = await session.scalars(
        select(Order).where(Order.customer_id == customer.id).order_by(Order.id)
    )
    entries = await session.scalars(
        select(LedgerEntry).where(LedgerEntry.customer_id == customer.id).order_by(LedgerEntry.id)
    )
    cur = shop.currency
    return {
        "customer": {
            "id": customer.external_id,
            "email": customer.email,
            "first_name": customer.first_name,
            "last_name": customer.last_name,
        },
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
