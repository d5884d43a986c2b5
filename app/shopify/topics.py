"""Shopify's webhook topics, and for each the one domain call its delivery becomes.

The inbox stores every delivery as sent and hands each to its topic's handler here (a topic not
listed is stored and marked `ignored`: orders/edited, for one, arrives again as orders/updated).

To add a topic: read its payload in `payloads.py`, write a handler below that calls one domain
service, list it in TOPICS, and subscribe to it (`WEBHOOK_TOPICS` in `app_config.py`, and
`shopify.app.toml`: a test holds the three to the same topics).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog_service
from app.core.snapshots import PlatformOrder
from app.inbox.models import EventStatus, WebhookEvent
from app.notifications import service as notification_service
from app.orders import refunds as refund_service
from app.orders import service as order_service
from app.privacy import service as privacy_service
from app.shopify import payloads
from app.shopify import tokens as shopify_tokens
from app.shops.models import Shop


@dataclass(frozen=True, slots=True)
class Incoming:
    """A stored delivery being handled: its row, its JSON body, and for an order topic the
    order snapshot its batch already read (None: read it here)."""

    event: WebhookEvent
    payload: dict[str, Any]
    snapshot: PlatformOrder | None = None


# What a handler answers: processed or ignored; None when the event went with the shop's data.
Handler = Callable[[AsyncSession, Shop, Incoming], Awaitable[EventStatus | None]]


@dataclass(frozen=True, slots=True)
class Topic:
    handle: Handler
    # The payload field that names the topic's order: an order's events are handled one at a
    # time, oldest first, under a lock on the order.
    order_field: str | None = None
    snapshot: bool = False  # the payload is a whole order (parsed once for its batch)
    solo: bool = False  # handled alone, by its own job: it changes or removes the shop
    privacy: bool = False  # privacy law: handled even once the app is uninstalled


async def _order(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    event = incoming.event
    snapshot = incoming.snapshot or payloads.parse_order(incoming.payload, event.topic)
    await order_service.take_snapshot(session, shop, snapshot, received_at=event.received_at)
    return EventStatus.processed


async def _refund(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    refund = payloads.parse_refund(incoming.payload, shop.currency)
    await refund_service.record_refund(session, shop, refund)
    return EventStatus.processed


async def _customer(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    customer = payloads.parse_customer(incoming.payload)
    await order_service.customer_appeared(session, shop, customer)
    return EventStatus.processed


async def _product(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    product = payloads.ShopifyProduct.model_validate(incoming.payload)
    await catalog_service.upsert_product(
        session,
        shop.id,
        product.id,
        title=product.title,
        product_type=product.product_type,
        vendor=product.vendor,
        tags=payloads.split_tags(product.tags),
    )
    return EventStatus.processed


async def _customers_redact(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    request = payloads.ShopifyPrivacyRequest.model_validate(incoming.payload)
    await privacy_service.redact_customer(
        session,
        shop,
        request.customer.id if request.customer else None,
        email=request.customer.email if request.customer else None,
        orders_to_redact=request.orders_to_redact,
    )
    incoming.event.body = privacy_service.REDACTED_BODY  # the request names the customer too
    return EventStatus.processed


async def _data_request(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    request = payloads.ShopifyPrivacyRequest.model_validate(incoming.payload)
    export = await privacy_service.export_customer(
        session,
        shop,
        request.customer.id if request.customer else None,
        orders_requested=request.orders_requested,
    )
    await notification_service.enqueue_alert(
        session,
        shop,
        event_key=f"data_request:{incoming.event.id}",
        event_type="customers.data_request",
        payload={"request": incoming.payload, "export": export},
    )
    return EventStatus.processed


async def _shop_redact(session: AsyncSession, shop: Shop, incoming: Incoming) -> None:
    session.expunge(incoming.event)  # the event row goes with the shop's data
    await privacy_service.redact_shop(session, shop)


async def _uninstalled(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    shop.uninstalled_at = datetime.now(UTC)
    await shopify_tokens.drop(session, shop)
    return EventStatus.processed


async def _scopes_update(session: AsyncSession, shop: Shop, incoming: Incoming) -> EventStatus:
    current = incoming.payload.get("current")
    if not isinstance(current, list):
        raise payloads.InvalidPayload("app/scopes_update without a `current` list")
    await shopify_tokens.record_scopes(session, shop, [str(scope) for scope in current])
    return EventStatus.processed


_ORDER = Topic(_order, order_field="id", snapshot=True)
TOPICS: dict[str, Topic] = {
    "orders/create": _ORDER,
    "orders/paid": _ORDER,
    "orders/updated": _ORDER,
    "orders/cancelled": _ORDER,
    "refunds/create": Topic(_refund, order_field="order_id"),
    "customers/create": Topic(_customer),
    "customers/update": Topic(_customer),
    "products/create": Topic(_product),
    "products/update": Topic(_product),
    "customers/redact": Topic(_customers_redact, solo=True, privacy=True),
    "customers/data_request": Topic(_data_request, solo=True, privacy=True),
    "shop/redact": Topic(_shop_redact, solo=True, privacy=True),
    "app/uninstalled": Topic(_uninstalled, solo=True),
    "app/scopes_update": Topic(_scopes_update),
}

ORDER_TOPICS = frozenset(name for name, topic in TOPICS.items() if topic.snapshot)
PRIVACY_TOPICS = frozenset(name for name, topic in TOPICS.items() if topic.privacy)
SOLO_TOPICS = frozenset(name for name, topic in TOPICS.items() if topic.solo)
# Errors that mean the payload can never be handled as it is (retrying the same bytes fails).
INVALID_PAYLOAD_ERRORS: tuple[type[Exception], ...] = (
    payloads.InvalidPayload,
    order_service.InvalidOrder,
)
