"""Shopify adapter: signature check and payload → platform-neutral order.

Read the way Shopify sends them today (REST webhook shapes, API 2024-10 and later):
- amounts in shop money (`*_set.shop_money`) wherever the payload has them;
- a line's quantity is what is still on the order after edits (`current_quantity`, plus what
  the order's own refunds took back: refunds are counted by the refund path, not twice);
- tips are line items (`tip`, or a "Tip" line of no product): never a purchase;
- order webhooks carry no transactions: `payment_gateway_names` says whether a gift card or
  store credit paid part of the order, and then how much is read from the Admin API;
- refunded shipping is in `refund_shipping_lines` (older payloads: a `shipping_refund`
  adjustment); refund transactions carry their own `currency`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import to_minor
from app.core.snapshots import PlatformCustomer, PlatformLine, PlatformOrder, PlatformRefund

# Gateways whose payments are credit already (a gift card, or store credit: this service's own
# cashback spent again), as Shopify's transactions and `payment_gateway_names` name them.
GIFT_CARD_GATEWAYS = frozenset({"gift_card"})
STORE_CREDIT_GATEWAYS = frozenset({"shopify_store_credit", "store_credit"})
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


def gateway_kind(name: str) -> str | None:
    """ "gift_card" or "store_credit" for a gateway that pays with credit; None for any other.
    Names are compared as Shopify writes its own (`gift_card`, `shopify_store_credit`), case,
    spaces and dashes aside."""
    normalized = name.strip().lower().replace(" ", "_").replace("-", "_")
    if normalized in GIFT_CARD_GATEWAYS:
        return "gift_card"
    if normalized in STORE_CREDIT_GATEWAYS:
        return "store_credit"
    return None


def may_pay_with_credit(name: str) -> bool:
    """A gateway name that is, or might be, a gift card or store credit: when in doubt the
    order's transactions are read (one query costs less than crediting the wrong amount)."""
    normalized = name.strip().lower().replace(" ", "_").replace("-", "_")
    return gateway_kind(name) is not None or "gift" in normalized or "store_credit" in normalized


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class _Money(_Lenient):
    amount: str
    currency_code: str | None = None


class _MoneySet(_Lenient):
    shop_money: _Money
    presentment_money: _Money | None = None


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
    current_quantity: int | None = Field(default=None, ge=0)
    tip: Any = None
    price: str
    price_set: _MoneySet | None = None
    discount_allocations: list[_DiscountAllocation] = Field(default_factory=list)
    tax_lines: list[_TaxLine] = Field(default_factory=list)
    gift_card: bool = False
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    vendor: str | None = None


class ShopifyCustomer(_Lenient):
    """A customer as an order carries it, and as customers/create and customers/update send it."""

    id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: str = ""
    verified_email: bool | None = None
    state: str | None = None

    def snapshot(self) -> PlatformCustomer:
        return PlatformCustomer(
            self.id,
            self.email,
            self.first_name,
            self.last_name,
            split_tags(self.tags),
            verified_email=self.verified_email,
            state=self.state,
        )


class _ShippingLine(_Lenient):
    price: str = "0"
    discounted_price: str | None = None
    discounted_price_set: _MoneySet | None = None


class _Company(_Lenient):
    id: str | None = None
    location_id: str | None = None


class _Transaction(_Lenient):
    kind: str = ""
    status: str = ""
    gateway: str = ""
    amount: str = "0"
    currency: str | None = None


class _RefundLine(_Lenient):
    line_item_id: str
    quantity: int = Field(ge=0)


class _OrderRefund(_Lenient):
    refund_line_items: list[_RefundLine] = Field(default_factory=list)


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
    customer: ShopifyCustomer | None = None
    company: _Company | None = None
    line_items: list[_LineItem] = Field(default_factory=list)
    shipping_lines: list[_ShippingLine] = Field(default_factory=list)
    total_shipping_price_set: _MoneySet | None = None
    presentment_currency: str | None = None
    payment_gateway_names: list[str] = Field(default_factory=list)
    # Order webhooks carry none; orders read through the Admin API may.
    transactions: list[_Transaction] | None = None
    refunds: list[_OrderRefund] = Field(default_factory=list)


def _shop_amount(plain: str, money_set: _MoneySet | None) -> str:
    # Shop money is the shop's currency; `presentment_money` may be another.
    return money_set.shop_money.amount if money_set else plain


def is_tip(item: _LineItem) -> bool:
    """Shopify adds a tip as a line item: with a `tip` object, of no product, titled "Tip"."""
    if item.tip not in (None, False, {}):
        return True
    return item.product_id is None and item.title.strip().lower() == "tip"


def _line(item: _LineItem, currency: str, refunded: int) -> PlatformLine:
    discount = sum(
        to_minor(_shop_amount(a.amount, a.amount_set), currency) for a in item.discount_allocations
    )
    tax = sum(to_minor(_shop_amount(t.price, t.price_set), currency) for t in item.tax_lines)
    # Units an order edit removed: not on the order (`current_quantity`) nor refunded.
    quantity = item.quantity
    if item.current_quantity is not None:
        quantity = min(item.quantity, item.current_quantity + refunded)
    if quantity < item.quantity:  # the line's discount and tax shrink with it
        discount = _share(discount, quantity, item.quantity)
        tax = _share(tax, quantity, item.quantity)
    return PlatformLine(
        external_id=item.id,
        title=item.name or item.title,
        quantity=quantity,
        unit_price=to_minor(_shop_amount(item.price, item.price_set), currency),
        discount_amount=discount,
        tax_amount=tax,
        tip=is_tip(item),
        removed_quantity=item.quantity - quantity,
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


def _share(amount: int, part: int, whole: int) -> int:
    quotient, remainder = divmod(amount * part, whole)
    return quotient + (2 * remainder >= whole)  # half up


def _refunded_quantities(order: ShopifyOrder) -> dict[str, int]:
    refunded: dict[str, int] = {}
    for refund in order.refunds:
        for line in refund.refund_line_items:
            refunded[line.line_item_id] = refunded.get(line.line_item_id, 0) + line.quantity
    return refunded


def _presentment(order: ShopifyOrder, currency: str) -> tuple[str | None, int | None]:
    """(the customer's currency when it is not the shop's, the order's total in it). Only
    ever used to value a refund given in that currency: a total that cannot be read leaves
    it unknown (such a refund is then kept unvalued), it never fails the order."""
    money = order.total_price_set.presentment_money if order.total_price_set else None
    other = (money.currency_code if money else None) or order.presentment_currency
    if other is None or other == currency:
        return None, None
    try:
        return other, to_minor(money.amount, other) if money else None
    except ValueError:
        return other, None


def _paid_with_credit(order: ShopifyOrder, currency: str) -> tuple[int | None, tuple[str, ...]]:
    """(part paid with gift cards or store credit, or None while unknown; those gateways)."""
    gateways = tuple(sorted({n for n in order.payment_gateway_names if may_pay_with_credit(n)}))
    if order.transactions:  # the rare payload that carries them
        return credit_paid(order.transactions, currency), gateways
    return (None if gateways else 0), gateways


def credit_paid(transactions: list[_Transaction], currency: str) -> int:
    """What successful sales and captures through credit gateways took, in minor units."""
    return sum(
        to_minor(t.amount, t.currency or currency)
        for t in transactions
        if gateway_kind(t.gateway) is not None
        and t.kind.lower() in ("sale", "capture")
        and t.status.lower() == "success"
    )


def _platform_order(order: ShopifyOrder, topic: str) -> PlatformOrder:
    currency = order.currency
    customer = None if order.customer is None else order.customer.snapshot()
    refunded = _refunded_quantities(order)
    paid_with_credit, credit_gateways = _paid_with_credit(order, currency)
    presentment_currency, presentment_total = _presentment(order, currency)
    return PlatformOrder(
        external_id=order.id,
        currency=currency,
        lines=tuple(_line(item, currency, refunded.get(item.id, 0)) for item in order.line_items),
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
        paid_with_credit_amount=paid_with_credit,
        credit_gateways=credit_gateways,
        b2b=order.company is not None,
        company_location_id=order.company.location_id if order.company else None,
        presentment_currency=presentment_currency,
        presentment_total_amount=presentment_total,
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


class _Adjustment(_Lenient):
    kind: str = ""
    amount: str = "0"
    amount_set: _MoneySet | None = None


class _RefundShippingLine(_Lenient):
    subtotal_amount_set: _MoneySet | None = None


class ShopifyRefund(_Lenient):
    id: str
    order_id: str
    refund_line_items: list[_RefundLine] = Field(default_factory=list)
    refund_shipping_lines: list[_RefundShippingLine] = Field(default_factory=list)
    order_adjustments: list[_Adjustment] = Field(default_factory=list)
    transactions: list[_Transaction] = Field(default_factory=list)


def parse_refund(payload: dict[str, Any], currency: str) -> PlatformRefund:
    """Raises pydantic.ValidationError or InvalidPayload. `currency` is the shop's."""
    refund = ShopifyRefund.model_validate(payload)
    lines = tuple((line.line_item_id, line.quantity) for line in refund.refund_line_items)
    try:
        shipping = _refunded_shipping(refund, currency)
        if lines:  # measured by its lines; the money moved says nothing more
            return PlatformRefund(refund.id, refund.order_id, lines, 0, shipping)
        # Money refunded without lines takes cashback back in proportion: shop money from the
        # refund's discrepancy adjustments when it has them, else its transactions.
        discrepancy = [a for a in refund.order_adjustments if a.kind == "refund_discrepancy"]
        if discrepancy and all(a.amount_set is not None for a in discrepancy):
            amount = sum(
                abs(to_minor(_shop_amount(a.amount, a.amount_set), currency)) for a in discrepancy
            )
            return PlatformRefund(refund.id, refund.order_id, (), amount, shipping)
        by_currency: dict[str, int] = {}
        for t in refund.transactions:
            if t.kind.lower() == "refund" and t.status.lower() == "success":
                moved = t.currency or currency
                by_currency[moved] = by_currency.get(moved, 0) + to_minor(t.amount, moved)
    except ValueError as exc:
        raise InvalidPayload(str(exc)) from exc
    shop_money = by_currency.pop(currency, 0)
    if not by_currency:
        return PlatformRefund(
            refund.id, refund.order_id, (), max(shop_money - shipping, 0), shipping
        )
    # In the customer's currency only: valued with the order's rate when the refund is applied
    # (shipping, in shop money, is taken off then). Refunds in two currencies at once are not
    # something Shopify makes; the larger part is kept and the rest read as shop money.
    other, amount = max(by_currency.items(), key=lambda item: item[1])
    return PlatformRefund(
        refund.id,
        refund.order_id,
        (),
        shop_money,
        shipping,
        amount_currency=other,
        amount_in_currency=amount,
    )


def _refunded_shipping(refund: ShopifyRefund, currency: str) -> int:
    """Shipping refunded, in shop money: `refund_shipping_lines` (API 2024-10 and later), else
    the older `shipping_refund` adjustments. Payloads may carry both for one refund."""
    lines = [line for line in refund.refund_shipping_lines if line.subtotal_amount_set]
    if lines:
        return sum(
            to_minor(line.subtotal_amount_set.shop_money.amount, currency)
            for line in lines
            if line.subtotal_amount_set is not None
        )
    return sum(
        abs(to_minor(_shop_amount(a.amount, a.amount_set), currency))
        for a in refund.order_adjustments
        if a.kind == "shipping_refund"
    )


def parse_customer(payload: dict[str, Any]) -> PlatformCustomer:
    """customers/create and customers/update; raises pydantic.ValidationError."""
    return ShopifyCustomer.model_validate(payload).snapshot()


class _PrivacyCustomer(_Lenient):
    id: str
    email: str | None = None


class ShopifyPrivacyRequest(_Lenient):
    """customers/redact (`orders_to_redact`) and customers/data_request
    (`orders_requested`)."""

    customer: _PrivacyCustomer | None = None
    orders_to_redact: list[str] = Field(default_factory=list)
    orders_requested: list[str] = Field(default_factory=list)
