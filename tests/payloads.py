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
