"""The platform-neutral order: what every webhook adapter produces and the calculator reads."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class PlatformLine:
    external_id: str
    title: str
    quantity: int
    unit_price: int  # minor units, shop currency
    discount_amount: int  # minor units allocated to this line, all units together
    gift_card: bool = False
    product_id: str | None = None
    variant_id: str | None = None
    sku: str | None = None
    vendor: str | None = None
    tax_amount: int = 0  # minor units of tax on the line, all units together
    tip: bool = False  # a tip the customer added: not a purchase
    removed_quantity: int = 0  # units an order edit took off (`quantity` is what is left)
    # From the shop's catalog (line items carry only ids, SKU and vendor).
    product_type: str | None = None
    product_tags: tuple[str, ...] = ()
    collections: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlatformCustomer:
    external_id: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    tags: tuple[str, ...] = ()
    # The account's standing, as the platform says (None: not said). Shopify's `state` is
    # `enabled`, `invited`, `disabled` or `declined`.
    verified_email: bool | None = None
    state: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformRefund:
    """A refund, in the shop's currency wherever the platform gives shop money."""

    external_id: str
    order_external_id: str
    lines: tuple[tuple[str, int], ...]  # (line id, quantity refunded)
    adjustment_amount: int  # refunded without lines (amount-only), minor units
    shipping_amount: int  # refunded shipping, minor units
    # Money refunded without lines known only in another currency: valued when applied.
    amount_currency: str | None = None
    amount_in_currency: int | None = None


@dataclass(frozen=True, slots=True)
class PlatformOrder:
    external_id: str
    currency: str
    lines: tuple[PlatformLine, ...]
    total_amount: int
    name: str | None = None
    email: str | None = None
    customer: PlatformCustomer | None = None
    financial_status: str | None = None
    paid: bool = False
    test: bool = False
    created_at: datetime | None = None
    cancelled_at: datetime | None = None
    updated_at: datetime | None = None
    tags: tuple[str, ...] = ()
    taxes_included: bool = False
    shipping_amount: int = 0  # minor units, after shipping discounts
    # Part of the total paid with gift cards or store credit; None while unknown (the order was
    # paid through such a gateway, and how much comes only from the platform's transactions).
    paid_with_credit_amount: int | None = 0
    credit_gateways: tuple[str, ...] = ()  # gateways used that are (or may be) credit
    b2b: bool = False  # placed by a company
    company_location_id: str | None = None  # B2B: the company location that bought
    # The customer's currency, when it is not the shop's, and the total in it.
    presentment_currency: str | None = None
    presentment_total_amount: int | None = None


_CATALOG_FIELDS = ("product_type", "product_tags", "collections")
_LINE_FIELDS = tuple(
    f.name for f in dataclass_fields(PlatformLine) if f.name not in _CATALOG_FIELDS
)
_CUSTOMER_FIELDS = tuple(f.name for f in dataclass_fields(PlatformCustomer))
_ORDER_FIELDS = tuple(
    f.name for f in dataclass_fields(PlatformOrder) if f.name not in ("lines", "customer")
)
_DATETIME_FIELDS = ("created_at", "cancelled_at", "updated_at")


def snapshot_to_json(order: PlatformOrder) -> dict[str, Any]:
    """The snapshot as JSON for the orders table (catalog facts are not part of it). Written
    field by field: `dataclasses.asdict` deep-copies, and this runs for every order event."""
    data: dict[str, Any] = {name: getattr(order, name) for name in _ORDER_FIELDS}
    for key in _DATETIME_FIELDS:
        value = data[key]
        data[key] = value.isoformat() if value is not None else None
    data["lines"] = [{name: getattr(line, name) for name in _LINE_FIELDS} for line in order.lines]
    customer = order.customer
    data["customer"] = (
        None if customer is None else {name: getattr(customer, name) for name in _CUSTOMER_FIELDS}
    )
    return data


def snapshot_from_json(data: dict[str, Any]) -> PlatformOrder:
    fields = dict(data)
    if "company_id" in fields:  # stored before B2B orders kept their location apart
        company = fields.pop("company_id")
        fields.setdefault("b2b", company is not None)
        fields.setdefault("company_location_id", company)
    for key in ("created_at", "cancelled_at", "updated_at"):
        value = fields.get(key)
        fields[key] = datetime.fromisoformat(value) if value else None
    customer = fields.get("customer")
    fields["customer"] = (
        PlatformCustomer(**{**customer, "tags": tuple(customer.get("tags", ()))})
        if customer
        else None
    )
    fields["lines"] = tuple(PlatformLine(**line) for line in fields["lines"])
    fields["tags"] = tuple(fields.get("tags", ()))
    fields["credit_gateways"] = tuple(fields.get("credit_gateways", ()))
    return PlatformOrder(**fields)
