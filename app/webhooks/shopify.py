"""Shopify adapter: signature check and payload → platform-neutral order."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.kit.money import to_minor
from app.orders.domain import PlatformCustomer, PlatformLine, PlatformOrder

ORDER_TOPICS = frozenset({"orders/create", "orders/paid", "orders/updated", "orders/cancelled"})
CUSTOMER_TOPICS = frozenset({"customers/create", "customers/update"})
PRODUCT_TOPICS = frozenset({"products/create", "products/update"})
# Gateways whose payments are credit already: no cashback on them.
_CREDIT_GATEWAYS = frozenset({"gift_card", "shopify_store_credit", "store_credit"})
# financial_status values that mean the customer's payment went through.
_PAID_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})


class InvalidPayload(ValueError):
    """The payload is JSON but not an order we can read (bad amounts, unknown currency…)."""


def sign(body: bytes, secret: str) -> str:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    if not signature:
        return False
    return hmac.compare_digest(sign(body, secret).encode(), signature.strip().encode())


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class _Money(_Lenient):
    amount: str


class _MoneySet(_Lenient):
    shop_money: _Money


class _DiscountAllocation(_Lenient):
    amount: str = "0"
    amount_set: _MoneySet | None = None


class _TaxLine(_Lenient):
    price: str = "0"
    price_set: _MoneySet | None = None


class _LineItem(_Lenient):
    id: str
    title: str = ""
    name: str | None = None
    quantity: int = Field(ge=0)
    price: str
    price_set: _MoneySet | None = None
    discount_allocations: list[_DiscountAllocation] = Field(default_factory=list)
    tax_lines: list[_TaxLine] = Field(default_factory=list)
    gift_card: bool = False
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    vendor: str | None = None


class _Customer(_Lenient):
    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: str = ""
    verified_email: bool | None = None
    state: str | None = None


class _ShippingLine(_Lenient):
    price: str = "0"
    discounted_price: str | None = None
    discounted_price_set: _MoneySet | None = None


class _Company(_Lenient):
    id: str
    location_id: str | None = None


class _Transaction(_Lenient):
    kind: str = ""
    status: str = ""
    gateway: str = ""
    amount: str = "0"


class ShopifyOrder(_Lenient):
    id: str
    name: str | None = None
    email: str | None = None
    currency: str
    financial_status: str | None = None
    test: bool = False
    created_at: datetime | None = None
    cancelled_at: datetime | None = None
    updated_at: datetime | None = None
    taxes_included: bool = False
    total_price: str = "0"
    total_price_set: _MoneySet | None = None
    tags: str = ""
    customer: _Customer | None = None
    company: _Company | None = None
    line_items: list[_LineItem] = Field(default_factory=list)
    shipping_lines: list[_ShippingLine] = Field(default_factory=list)
    total_shipping_price_set: _MoneySet | None = None
    transactions: list[_Transaction] = Field(default_factory=list)


def _shop_amount(plain: str, money_set: _MoneySet | None) -> str:
    # Shop money is the shop's currency; `presentment_money` may be another.
    return money_set.shop_money.amount if money_set else plain


def _line(item: _LineItem, currency: str) -> PlatformLine:
    discount = sum(
        to_minor(_shop_amount(a.amount, a.amount_set), currency) for a in item.discount_allocations
    )
    tax = sum(to_minor(_shop_amount(t.price, t.price_set), currency) for t in item.tax_lines)
    return PlatformLine(
        external_id=item.id,
        title=item.name or item.title,
        quantity=item.quantity,
        unit_price=to_minor(_shop_amount(item.price, item.price_set), currency),
        discount_amount=discount,
        tax_amount=tax,
        gift_card=item.gift_card,
        product_id=item.product_id,
        variant_id=item.variant_id,
        sku=item.sku,
        vendor=item.vendor,
    )


def parse_order(payload: dict[str, Any], topic: str) -> PlatformOrder:
    """Raises pydantic.ValidationError or InvalidPayload on a payload that is not an order."""
    order = ShopifyOrder.model_validate(payload)
    try:
        return _platform_order(order, topic)
    except ValueError as exc:  # amounts and currencies are checked while converting
        raise InvalidPayload(str(exc)) from exc


def _platform_order(order: ShopifyOrder, topic: str) -> PlatformOrder:
    currency = order.currency
    customer = None
    if order.customer is not None:
        c = order.customer
        customer = PlatformCustomer(
            c.id,
            c.email,
            c.first_name,
            c.last_name,
            split_tags(c.tags),
            verified_email=c.verified_email,
            state=c.state,
        )
    return PlatformOrder(
        external_id=order.id,
        currency=currency,
        lines=tuple(_line(item, currency) for item in order.line_items),
        total_amount=to_minor(_shop_amount(order.total_price, order.total_price_set), currency),
        name=order.name,
        email=order.email or (customer.email if customer else None),
        customer=customer,
        financial_status=order.financial_status,
        paid=topic == "orders/paid" or order.financial_status in _PAID_STATUSES,
        test=order.test,
        created_at=order.created_at,
        cancelled_at=order.cancelled_at,
        updated_at=order.updated_at,
        tags=split_tags(order.tags),
        taxes_included=order.taxes_included,
        shipping_amount=_shipping(order, currency),
        paid_with_credit_amount=sum(
            to_minor(t.amount, currency)
            for t in order.transactions
            if t.gateway in _CREDIT_GATEWAYS
            and t.kind in ("sale", "capture")
            and t.status == "success"
        ),
        company_id=(order.company.location_id or order.company.id) if order.company else None,
    )


class ShopifyProduct(_Lenient):
    id: str
    title: str | None = None
    product_type: str | None = None
    vendor: str | None = None
    tags: str = ""


def split_tags(tags: str) -> tuple[str, ...]:
    """Shopify sends tags as one comma-separated string."""
    return tuple(t.strip() for t in tags.split(",") if t.strip())


def _shipping(order: ShopifyOrder, currency: str) -> int:
    """Shipping the customer paid, after shipping discounts."""
    if order.shipping_lines:
        return sum(
            to_minor(
                _shop_amount(line.discounted_price or line.price, line.discounted_price_set),
                currency,
            )
            for line in order.shipping_lines
        )
    if order.total_shipping_price_set is not None:
        return to_minor(order.total_shipping_price_set.shop_money.amount, currency)
    return 0


class _RefundLine(_Lenient):
    line_item_id: str
    quantity: int = Field(ge=0)


class _Adjustment(_Lenient):
    kind: str = ""
    amount: str = "0"
    amount_set: _MoneySet | None = None


class _RefundTransaction(_Lenient):
    kind: str = ""
    status: str = ""
    amount: str = "0"


class ShopifyRefund(_Lenient):
    id: str
    order_id: str
    refund_line_items: list[_RefundLine] = Field(default_factory=list)
    order_adjustments: list[_Adjustment] = Field(default_factory=list)
    transactions: list[_RefundTransaction] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PlatformRefund:
    external_id: str
    order_external_id: str
    lines: tuple[tuple[str, int], ...]  # (line id, quantity refunded)
    adjustment_amount: int  # refunded without lines (amount-only), minor units
    shipping_amount: int  # refunded shipping, which never earned cashback


def parse_refund(payload: dict[str, Any], currency: str) -> PlatformRefund:
    """Raises pydantic.ValidationError or InvalidPayload."""
    refund = ShopifyRefund.model_validate(payload)
    try:
        shipping = sum(
            abs(to_minor(_shop_amount(a.amount, a.amount_set), currency))
            for a in refund.order_adjustments
            if a.kind == "shipping_refund"
        )
        refunded = sum(
            to_minor(t.amount, currency)
            for t in refund.transactions
            if t.kind == "refund" and t.status == "success"
        )
    except ValueError as exc:
        raise InvalidPayload(str(exc)) from exc
    lines = tuple((line.line_item_id, line.quantity) for line in refund.refund_line_items)
    # Money refunded without lines (an adjustment or an amount-only refund) earns back in
    # proportion; refunds with lines are measured by their lines.
    amount_only = 0 if lines else max(refunded - shipping, 0)
    return PlatformRefund(refund.id, refund.order_id, lines, amount_only, shipping)


class ShopifyCustomer(_Lenient):
    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: str = ""
    verified_email: bool | None = None
    state: str | None = None


class _PrivacyCustomer(_Lenient):
    id: str
    email: str | None = None


class ShopifyPrivacyRequest(_Lenient):
    """customers/redact and customers/data_request."""

    customer: _PrivacyCustomer | None = None
    orders_to_redact: list[str] = Field(default_factory=list)
