"""Shopify payload builders, from the sample payloads in examples/."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
_ids = itertools.count(9_100_000_000_000_000_001)


def paid_order(**overrides: Any) -> dict[str, Any]:
    """The Shopify sample `orders/paid` payload (cashback 4.38 USD), with overrides."""
    payload: dict[str, Any] = json.loads((EXAMPLES / "orders-paid.json").read_text())
    payload.update(copy.deepcopy(overrides))
    return payload


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
