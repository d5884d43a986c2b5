"""Shopify payload builders, from the sample payloads in examples/."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_ids = itertools.count(9_100_000_000_000_000_001)


def paid_order(**overrides: Any) -> dict[str, Any]:
    """The Shopify sample `orders/paid` payload (cashback 4.38 USD), with overrides."""
    payload: dict[str, Any] = json.loads((EXAMPLES / "orders-paid.json").read_text())
    payload.update(copy.deepcopy(overrides))
    return payload


def one_line(price: str, currency: str) -> dict[str, Any]:
    """Overrides of the sample order: one line at `price` in `currency`, nothing else."""
    line = {
        "id": new_order_id(),
        "title": "Kettle",
        "quantity": 1,
        "price": price,
        "product_id": 11,
        "variant_id": 12,
        "discount_allocations": [],
        "tax_lines": [],
        "gift_card": False,
    }
    return {
        "currency": currency,
        "line_items": [line],
        "total_price": price,
        "shipping_lines": [],
        "total_shipping_price_set": None,
    }


def new_order_id() -> int:
    return next(_ids)


def _example(name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((EXAMPLES / name).read_text())
    payload.update(copy.deepcopy(overrides))
    return payload


def refund(**overrides: Any) -> dict[str, Any]:
    """The Shopify sample refund: one of the two shoes of the sample order (1.80 back)."""
    return _example("refunds-create.json", overrides)


def new_customer(**overrides: Any) -> dict[str, Any]:
    """The Shopify sample `customers/create` payload (sam.guest@example.com)."""
    return _example("customers-create.json", overrides)


def customer_account(customer_id: int, **fields: Any) -> dict[str, Any]:
    """A Shopify customer object (an order's `customer`, or a `customers/update` body)."""
    return {
        "id": customer_id,
        "email": f"c{customer_id}@example.com",
        "first_name": "Maria",
        "last_name": "Lopez",
        "tags": "",
        **fields,
    }


def refund_lines(*lines: tuple[int, int]) -> list[dict[str, Any]]:
    """`refund_line_items` for (line item id, quantity) pairs."""
    return [{"line_item_id": line, "quantity": qty} for line, qty in lines]


SHOES, GIFT_CARD, SOCKS = 466157049, 518995019, 703073504


# Shapes of Shopify's REST payloads as of API 2026-07 (its libraries' fixtures): money in
# `*_set` with shop and presentment amounts, `current_quantity` beside `quantity`, tips as line
# items of no product, `refund_shipping_lines`, refund transactions with their own currency.


def money_set(
    shop: str,
    presentment: str | None = None,
    *,
    shop_currency: str = "USD",
    presentment_currency: str | None = None,
) -> dict[str, Any]:
    return {
        "shop_money": {"amount": shop, "currency_code": shop_currency},
        "presentment_money": {
            "amount": presentment or shop,
            "currency_code": presentment_currency or shop_currency,
        },
    }


def tip_line(amount: str = "5.00", line_id: int = 990000000001) -> dict[str, Any]:
    """A tip as Shopify adds it to an order: a line item with a `tip` object, no product."""
    return {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "product_id": None,
        "variant_id": None,
        "title": "Tip",
        "name": "Tip",
        "sku": None,
        "vendor": None,
        "quantity": 1,
        "current_quantity": 1,
        "price": amount,
        "price_set": money_set(amount),
        "total_discount": "0.00",
        "discount_allocations": [],
        "gift_card": False,
        "taxable": False,
        "requires_shipping": False,
        "tax_lines": [],
        "tip": {"payment_gateway": "shopify_payments", "payment_method": "card"},
    }


def refund_2026(
    *,
    lines: Sequence[tuple[int, int]] = (),
    shipping: str | None = None,
    transactions: Sequence[tuple[str, str]] = (),
    order_id: int = 820982911946154508,
    refund_id: int | None = None,
    legacy_shipping: bool = False,
) -> dict[str, Any]:
    """A `refunds/create` payload in today's shape: refunded lines (line id, quantity),
    refunded shipping in `refund_shipping_lines` (or, `legacy_shipping`, the pre-2024-10
    `shipping_refund` adjustment alone), and refund transactions as (amount, currency)."""
    rid = refund_id or next(_ids)
    payload: dict[str, Any] = {
        "id": rid,
        "admin_graphql_api_id": f"gid://shopify/Refund/{rid}",
        "order_id": order_id,
        "created_at": "2026-11-24T09:02:11-05:00",
        "processed_at": "2026-11-24T09:02:11-05:00",
        "note": None,
        "restock": bool(lines),
        "refund_line_items": [
            {
                "id": next(_ids),
                "line_item_id": line_id,
                "quantity": quantity,
                "restock_type": "return",
                "subtotal": 36.0,  # a JSON number, as Shopify sends it; never read
            }
            for line_id, quantity in lines
        ],
        "refund_shipping_lines": [],
        "order_adjustments": [],
        "duties": [],
        "transactions": [
            {
                "id": next(_ids),
                "order_id": order_id,
                "kind": "refund",
                "status": "success",
                "gateway": "shopify_payments",
                "amount": amount,
                "currency": currency,
                "parent_id": 801038806,
            }
            for amount, currency in transactions
        ],
    }
    if shipping is not None and legacy_shipping:
        payload["order_adjustments"] = [
            {
                "id": next(_ids),
                "order_id": order_id,
                "refund_id": rid,
                "amount": f"-{shipping}",
                "tax_amount": "0.00",
                "kind": "shipping_refund",
                "reason": "Shipping refund",
                "amount_set": money_set(f"-{shipping}"),
            }
        ]
    elif shipping is not None:
        payload["refund_shipping_lines"] = [
            {
                "id": next(_ids),
                "shipping_line_id": 271878346596884015,
                "subtotal_amount_set": money_set(shipping),
            }
        ]
    return payload
