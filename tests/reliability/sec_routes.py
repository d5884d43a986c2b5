"""The requests each route of the API answers, aimed at a given shop's objects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.core.schedule import week_label
from app.main import create_app
from tests.payloads import paid_order
from tests.reliability.sec_world import ShopWorld
from tests.support import ShopHandle, Stack, shopify_headers


@dataclass
class Probe:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    expect: tuple[int, ...] = (404,)
    headers: dict[str, str] | None = None  # None: shop A's admin key
    content: bytes | None = None


def this_week() -> str:
    today = datetime.now(UTC).date()
    return week_label(today - timedelta(days=today.weekday()))


def probes(b: ShopWorld, a: ShopHandle) -> dict[str, Callable[[], Probe]]:
    """operationId → the request shop A sends against shop B's objects."""
    order = f"/v1/orders/{b.pending_order_id}"
    program = {"base_rate": "5"}
    webhook_body = b'{"id": 1}'
    return {
        "receiveShopifyWebhook": lambda: Probe(
            "POST",
            "/webhooks/shopify",
            content=webhook_body,
            # Signed with A's secret but claiming to be B: refused.
            headers=shopify_headers(a, webhook_body, domain=b.shop.domain),
            expect=(401,),
        ),
        "listOrders": lambda: Probe(
            "GET",
            "/v1/orders",
            params={"customer_id": b.customer_id, "external_id": b.pending_external_id},
            expect=(200,),
        ),
        "countOrdersByStatus": lambda: Probe("GET", "/v1/orders/counts", expect=(200,)),
        "getOrder": lambda: Probe("GET", order),
        "approveOrder": lambda: Probe("POST", f"{order}/approve"),
        "rejectOrder": lambda: Probe("POST", f"{order}/reject", json={"reason": "x"}),
        "holdOrder": lambda: Probe("POST", f"{order}/hold", json={"reason": "x"}),
        "releaseOrder": lambda: Probe("POST", f"{order}/release"),
        "processOrder": lambda: Probe("POST", f"{order}/process", json={"expected_amount": "4.38"}),
        "bulkApproveOrders": lambda: Probe(
            "POST",
            "/v1/orders/bulk-approve",
            json={"ids": [int(b.pending_order_id), int(b.credited_order_id)]},
            expect=(200,),
        ),
        "bulkRejectOrders": lambda: Probe(
            "POST",
            "/v1/orders/bulk-reject",
            json={"ids": [int(b.pending_order_id)], "reason": "x"},
            expect=(200,),
        ),
        "getCustomer": lambda: Probe("GET", f"/v1/customers/{b.customer_id}"),
        "listCustomerLedger": lambda: Probe("GET", f"/v1/customers/{b.customer_id}/ledger"),
        "redeemCredit": lambda: Probe(
            "POST",
            f"/v1/customers/{b.customer_id}/redemptions",
            json={"amount": "0.01", "reference": "A's till"},
        ),
        "getProgram": lambda: Probe("GET", "/v1/program", expect=(200,)),
        "replaceProgram": lambda: Probe("PUT", "/v1/program", json=program, expect=(200,)),
        "previewCashback": lambda: Probe(
            "POST", "/v1/cashback/preview", json={"order": paid_order()}, expect=(200,)
        ),
        "simulateProgram": lambda: Probe(
            "POST",
            "/v1/program/simulate",
            json={"program": program, "date_from": "2000-01-01", "date_to": "2999-12-31"},
            expect=(200,),
        ),
        "getDashboardMetrics": lambda: Probe("GET", "/v1/metrics/dashboard", expect=(200,)),
        "getDailyMetrics": lambda: Probe(
            "GET",
            "/v1/metrics/daily",
            params={"from": "2000-01-01", "to": "2000-03-01"},
            expect=(200,),
        ),
        "getTopCustomers": lambda: Probe(
            "GET", "/v1/metrics/top-customers", params={"days": 366}, expect=(200,)
        ),
        # The catalog is keyed by the platform's product id within a shop: A writing the same
        # id makes A's own product and leaves B's alone.
        "getCatalogProduct": lambda: Probe("GET", f"/v1/catalog/products/{b.product_id}"),
        "replaceCatalogProduct": lambda: Probe(
            "PUT", f"/v1/catalog/products/{b.product_id}", json={"title": "A's"}, expect=(200,)
        ),
        "getShopSettings": lambda: Probe("GET", "/v1/shop/settings", expect=(200,)),
        "getMe": lambda: Probe("GET", "/v1/me", expect=(200,)),
        "updateShopSettings": lambda: Probe(
            "PATCH", "/v1/shop/settings", json={"award_delay_days": 3}, expect=(200,)
        ),
        "getOperation": lambda: Probe("GET", f"/v1/operations/{b.operation_id}"),
        "listApiKeys": lambda: Probe("GET", "/v1/api-keys", expect=(200,)),
        "createApiKey": lambda: Probe(
            "POST", "/v1/api-keys", json={"name": "A's", "role": "viewer"}, expect=(201,)
        ),
        "revokeApiKey": lambda: Probe("DELETE", f"/v1/api-keys/{b.viewer_key_id}"),
        "listAuditEvents": lambda: Probe(
            "GET", "/v1/audit-events", params={"order_id": b.pending_order_id}, expect=(200,)
        ),
        "getWeeklyAudit": lambda: Probe(  # this week, when B's orders were credited
            "GET",
            "/v1/audit/weekly",
            params={"week": this_week(), "orders_above": 0},
            expect=(200,),
        ),
        # A shop's key does not open the operator's door, not even to make a shop.
        "createShop": lambda: Probe(
            "POST", "/v1/admin/shops", json={"domain": "a-made-this.myshopify.com"}, expect=(401,)
        ),
        "getHealth": lambda: Probe("GET", "/healthz", expect=(200,)),
        "getReadiness": lambda: Probe("GET", "/readyz", expect=(200,)),
    }


def operations(app_openapi: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    return {
        op["operationId"]: (method.upper(), path, op)
        for path, item in app_openapi["paths"].items()
        for method, op in item.items()
    }


async def send(stack: Stack, probe: Probe, auth: dict[str, str]) -> httpx.Response:
    headers = probe.headers if probe.headers is not None else auth
    return await stack.client.request(
        probe.method,
        probe.path,
        headers=headers,
        json=probe.json,
        params=probe.params,
        content=probe.content,
    )


def api_spec(stack: Stack) -> dict[str, Any]:
    """The OpenAPI document of the app under test (the one `openapi.yaml` is written from)."""
    return create_app(stack.settings, stack.resources).openapi()
