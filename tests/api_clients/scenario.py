"""A frontend's day in one scenario: every operation of the document called at least once.

`drive` records each exchange under the operationId it exercised, so the contract test can check
that every operation was called and that every live answer matches the schema it declares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.shops.models import ApiKeyRole
from tests.payloads import new_order_id, paid_order
from tests.support import ADMIN_TOKEN, ShopHandle, Stack, shopify_headers

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@dataclass
class Exchange:
    operation_id: str
    status: int
    media_type: str
    body: Any
    headers: dict[str, str]


@dataclass
class Recorder:
    client: httpx.AsyncClient
    exchanges: list[Exchange] = field(default_factory=list)

    async def call(
        self, operation_id: str, request: str, *, expect: int = 200, **kwargs: Any
    ) -> Any:
        """`request` is `"METHOD /path"`; fails unless the answer has the `expect`ed status."""
        method, url = request.split(" ", 1)
        response = await self.client.request(method, url, **kwargs)
        assert response.status_code == expect, (operation_id, response.status_code, response.text)
        media_type = response.headers.get("content-type", "").split(";")[0]
        body = response.json() if media_type.endswith("json") else response.text
        headers = dict(response.headers)
        self.exchanges.append(
            Exchange(operation_id, response.status_code, media_type, body, headers)
        )
        return body


async def drive(stack: Stack) -> list[Exchange]:
    rec = Recorder(stack.client)
    call = rec.call
    await call("getHealth", "GET /healthz")
    await call("getReadiness", "GET /readyz")

    created = await call(
        "createShop",
        "POST /v1/admin/shops",
        expect=201,
        headers=ADMIN,
        json={"domain": "contract.myshopify.com", "currency": "USD", "timezone": "UTC"},
    )
    shop = ShopHandle(
        int(created["id"]), created["domain"], created["api_key"], created["webhook_secret"]
    )
    auth = shop.auth
    await call("createShop", "POST /v1/admin/shops", expect=401, json={"domain": "x.com"})
    await call(
        "updateShopSettings",
        "PATCH /v1/shop/settings",
        headers=auth,
        json={"processing_mode": "manual", "approval_ceiling": "50.00"},
    )
    await call("getShopSettings", "GET /v1/shop/settings", headers=auth)
    await call("getMe", "GET /v1/me", headers=auth)
    await call("getMe", "GET /v1/me", expect=401)

    guest = new_order_id()
    external_ids = [new_order_id() for _ in range(5)]
    for external_id in external_ids:
        body = json.dumps(paid_order(id=external_id)).encode()
        await call(
            "receiveShopifyWebhook",
            "POST /webhooks/shopify",
            content=body,
            headers=shopify_headers(shop, body),
        )
    body = json.dumps(paid_order(id=guest, customer=None)).encode()
    await call(
        "receiveShopifyWebhook",
        "POST /webhooks/shopify",
        content=body,
        headers=shopify_headers(shop, body, secret="wrong-secret"),
        expect=401,
    )
    await call(
        "receiveShopifyWebhook",
        "POST /webhooks/shopify",
        content=body,
        headers=shopify_headers(shop, body),
    )
    await stack.run_worker()

    pending = await call(
        "listOrders",
        "GET /v1/orders",
        headers=auth,
        params={"status": "pending,held", "sort": "created_at", "limit": 2},
    )
    assert pending["next_cursor"] is not None
    await call(
        "listOrders",
        "GET /v1/orders",
        headers=auth,
        params={"status": "pending", "cursor": pending["next_cursor"], "limit": 200},
    )
    await call("listOrders", "GET /v1/orders", headers=auth, params={"status": "paid?"}, expect=422)
    await call("countOrdersByStatus", "GET /v1/orders/counts", headers=auth)
    ids = {}
    for external_id in [*external_ids, guest]:
        [summary] = (
            await call(
                "listOrders",
                "GET /v1/orders",
                headers=auth,
                params={"external_id": str(external_id)},
            )
        )["items"]
        ids[external_id] = summary["id"]
    first, second, third, fourth, fifth = (ids[e] for e in external_ids)
    order = await call("getOrder", f"GET /v1/orders/{first}", headers=auth)
    await call("getOrder", "GET /v1/orders/999999", headers=auth, expect=404)
    await call("getOrder", "GET /v1/orders/not-an-id", headers=auth, expect=422)

    etag = f'"{order["version"]}"'
    await call(
        "approveOrder",
        f"POST /v1/orders/{first}/approve",
        headers=auth | {"If-Match": etag},
        json={"amount": "4.00", "note": "goodwill"},
    )
    await call(
        "approveOrder",
        f"POST /v1/orders/{first}/approve",
        headers=auth | {"If-Match": etag},
        expect=412,
    )
    await call("approveOrder", f"POST /v1/orders/{first}/approve", headers=auth, expect=409)
    await call(
        "rejectOrder",
        f"POST /v1/orders/{second}/reject",
        headers=auth,
        json={"reason": "test order"},
    )
    await call(
        "holdOrder",
        f"POST /v1/orders/{third}/hold",
        headers=auth,
        json={"reason": "address mismatch"},
    )
    await call("releaseOrder", f"POST /v1/orders/{third}/release", headers=auth)
    await call("processOrder", f"POST /v1/orders/{ids[guest]}/process", headers=auth, json={})
    await call(
        "bulkApproveOrders",
        "POST /v1/orders/bulk-approve",
        headers=auth,
        json={"ids": [third, fourth, "999999"]},
    )
    await call(
        "bulkRejectOrders",
        "POST /v1/orders/bulk-reject",
        headers=auth,
        json={"ids": [fifth], "reason": "duplicate order"},
    )
    viewer = await stack.add_key(shop, ApiKeyRole.viewer)
    await call(
        "rejectOrder",
        f"POST /v1/orders/{fifth}/reject",
        headers=viewer,
        json={"reason": "x"},
        expect=403,
    )

    customer_id = order["customer_id"]
    await call("getCustomer", f"GET /v1/customers/{customer_id}", headers=auth)
    await call("getCustomer", "GET /v1/customers/999999", headers=auth, expect=404)
    await call(
        "redeemCredit",
        f"POST /v1/customers/{customer_id}/redemptions",
        headers=auth,
        json={"amount": "0.50", "reference": "till-1"},
        expect=201,
    )
    await call(
        "redeemCredit",
        f"POST /v1/customers/{customer_id}/redemptions",
        headers=auth,
        json={"amount": "99999.00", "reference": "till-2"},
        expect=409,
    )
    await call(
        "listCustomerLedger",
        f"GET /v1/customers/{customer_id}/ledger",
        headers=auth,
        params={"limit": 1},
    )
    await call(
        "listCustomerLedger",
        f"GET /v1/customers/{customer_id}/ledger",
        headers=auth,
        params={"cursor": "bogus"},
        expect=400,
    )

    program = await call("getProgram", "GET /v1/program", headers=auth)
    draft = {k: v for k, v in program.items() if k not in ("version", "created_at")}
    draft["base_rate"] = "6"
    await call("replaceProgram", "PUT /v1/program", headers=auth, json=draft)
    await call(
        "previewCashback",
        "POST /v1/cashback/preview",
        headers=auth,
        json={"order": paid_order(), "program": draft | {"base_rate": "10"}},
    )
    await call(
        "simulateProgram",
        "POST /v1/program/simulate",
        headers=auth,
        json={"program": draft, "date_from": "2020-01-01", "date_to": "2030-12-31"},
    )

    await call("getDashboardMetrics", "GET /v1/metrics/dashboard", headers=auth)
    await call(
        "getDailyMetrics",
        "GET /v1/metrics/daily",
        headers=auth,
        params={"from": "2026-01-01", "to": "2026-01-03", "tz": "Europe/Berlin"},
    )
    await call("getTopCustomers", "GET /v1/metrics/top-customers", headers=auth)

    await call(
        "replaceCatalogProduct",
        "PUT /v1/catalog/products/632910392",
        headers=auth,
        json={
            "title": "IPod Nano",
            "product_type": "Music",
            "tags": ["sale"],
            "collections": ["summer"],
        },
    )
    await call("getCatalogProduct", "GET /v1/catalog/products/632910392", headers=auth)

    waiting = new_order_id()
    body = json.dumps(paid_order(id=waiting)).encode()
    await rec.client.post("/webhooks/shopify", content=body, headers=shopify_headers(shop, body))
    await stack.run_worker()
    await call(
        "updateShopSettings",
        "PATCH /v1/shop/settings",
        headers=auth,
        json={"processing_mode": "automatic"},
        expect=409,
    )
    changed = await call(
        "updateShopSettings",
        "PATCH /v1/shop/settings",
        headers=auth,
        json={"processing_mode": "automatic", "pending_orders": "process"},
    )
    await call("getOperation", f"GET /v1/operations/{changed['operation']['id']}", headers=auth)

    key = await call(
        "createApiKey",
        "POST /v1/api-keys",
        headers=auth,
        expect=201,
        json={"name": "Ana", "role": "reviewer"},
    )
    await call("listApiKeys", "GET /v1/api-keys", headers=auth, params={"limit": 1})
    await call("revokeApiKey", f"DELETE /v1/api-keys/{key['id']}", headers=auth)
    await call(
        "listAuditEvents",
        "GET /v1/audit-events",
        headers=auth,
        params={"order_id": first, "limit": 10},
    )
    await call("listAuditEvents", "GET /v1/audit-events", headers=auth | {"Accept": "text/csv"})
    await call("getWeeklyAudit", "GET /v1/audit/weekly", headers=auth)
    await call(
        "getWeeklyAudit",
        "GET /v1/audit/weekly",
        headers=auth | {"Accept": "text/csv"},
        params={"week": "2026-W48", "orders_above": 0},
    )
    await call("getWeeklyAudit", "GET /v1/audit/weekly?week=2026-W54", headers=auth, expect=422)
    # The event stream never ends by itself; its refusal is a problem document like any other.
    await call("streamEvents", "GET /v1/events", expect=401)
    return rec.exchanges
