"""Pre-built, pre-signed Shopify `orders/paid` deliveries.

The HMAC covers the body only, so a body and its signature can be signed once and sent with
any event id: the load generators add a fresh `X-Shopify-Event-Id` to every request, which
keeps every delivery a new event for the API even when the (bounded) pool of bodies wraps.

Pool file format, shared by `wrk.lua` and `loadgen.py`: records `<signature>\\n<body>\\0`.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.shopify.payloads import sign

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "examples" / "orders-paid.json"
WEBHOOK_PATH = "/webhooks/shopify"
TOPIC = "orders/paid"
API_VERSION = "2025-01"
CUSTOMER_ID_BASE = 115_310_627_000_000_000


@dataclass(frozen=True, slots=True)
class Delivery:
    order_id: int
    body: bytes
    signature: str

    def headers(self, domain: str, event_key: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "X-Shopify-Topic": TOPIC,
            "X-Shopify-Hmac-Sha256": self.signature,
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-Api-Version": API_VERSION,
            "X-Shopify-Event-Id": event_key,
            "X-Shopify-Webhook-Id": event_key,
        }


class OrderFactory:
    """Distinct paid orders of the example payload, spread over `customers` customers."""

    def __init__(self, secret: str, customers: int, template: Path = TEMPLATE_PATH) -> None:
        if customers < 1:
            raise ValueError("customers must be at least 1")
        loaded: Any = json.loads(template.read_text())
        if not isinstance(loaded, dict) or not isinstance(loaded.get("customer"), dict):
            raise ValueError(f"{template} is not an order with a customer")
        self._template: dict[str, Any] = loaded
        self._secret = secret
        self._customers = customers

    def delivery(self, order_id: int) -> Delivery:
        payload = copy.copy(self._template)
        payload["id"] = order_id
        payload["admin_graphql_api_id"] = f"gid://shopify/Order/{order_id}"
        payload["name"] = f"#B{order_id}"
        customer_no = order_id % self._customers
        customer = dict(self._template["customer"])
        customer["id"] = CUSTOMER_ID_BASE + customer_no
        customer["admin_graphql_api_id"] = f"gid://shopify/Customer/{customer['id']}"
        customer["email"] = f"customer{customer_no}@example.com"
        payload["customer"] = customer
        payload["email"] = customer["email"]
        body = orjson.dumps(payload)
        return Delivery(order_id, body, sign(body, self._secret))


def write_pool(path: Path, deliveries: list[Delivery]) -> int:
    """Write the pool file; returns its size in bytes."""
    data = b"".join(d.signature.encode() + b"\n" + d.body + b"\0" for d in deliveries)
    path.write_bytes(data)
    return len(data)


def read_pool(path: Path) -> list[tuple[bytes, bytes]]:
    """(signature, body) pairs of a pool file."""
    pairs: list[tuple[bytes, bytes]] = []
    for record in path.read_bytes().split(b"\0"):
        if record:
            signature, _, body = record.partition(b"\n")
            pairs.append((signature, body))
    return pairs
