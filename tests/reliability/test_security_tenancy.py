"""Tenant isolation and roles, route by route from the OpenAPI document.

Shop A's admin key is aimed at shop B's objects on every route: each answers 404 (or serves
only A's own data) and none of B's rows change. A route the matrices do not know fails the
test, so a new route cannot ship without saying how it is isolated and who may call it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from app.shops.models import ApiKeyRole
from tests.payloads import paid_order
from tests.reliability.sec_world import ShopWorld, build_world, snapshot
from tests.support import ADMIN_TOKEN, ShopHandle, Stack, shopify_headers


@dataclass
class Probe:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    expect: tuple[int, ...] = (404,)
    headers: dict[str, str] | None = None  # None: shop A's admin key
    content: bytes | None = None


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
        "putCatalogProduct": lambda: Probe(
            "PUT", f"/v1/catalog/products/{b.product_id}", json={"title": "A's"}, expect=(200,)
        ),
        "getShopSettings": lambda: Probe("GET", "/v1/shop/settings", expect=(200,)),
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
        # A shop's key does not open the operator's door, not even to make a shop.
        "createShop": lambda: Probe(
            "POST", "/v1/admin/shops", json={"domain": "a-made-this.myshopify.com"}, expect=(401,)
        ),
        "getHealth": lambda: Probe("GET", "/healthz", expect=(200,)),
        "getReadiness": lambda: Probe("GET", "/readyz", expect=(200,)),
    }


# Routes whose isolation another test proves, and why they are not probed here.
PROVEN_ELSEWHERE = {
    # An endless SSE stream: tests/events/test_stream.py
    # test_a_shop_receives_its_own_order_status_changes_only sends B's changes while A listens.
    "streamEvents",
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


async def test_shop_a_cannot_see_or_change_shop_b_on_any_route(stack: Stack) -> None:
    b = await build_world(stack, "bravo")
    a = await stack.create_shop()
    spec = stack.client._transport.app.openapi()  # type: ignore[attr-defined]
    known = probes(b, a)
    routes = set(operations(spec))
    assert routes - PROVEN_ELSEWHERE == set(known), (
        "every route needs an isolation probe: "
        f"missing {sorted(routes - PROVEN_ELSEWHERE - set(known))}, "
        f"stale {sorted(set(known) - routes)}"
    )

    before = await snapshot(stack, b.shop.id)
    for operation_id, make in known.items():
        probe = make()
        response = await send(stack, probe, a.auth)
        assert response.status_code in probe.expect, (operation_id, response.text)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"
        leaked = [m for m in b.markers() if m in response.text]
        assert not leaked, (operation_id, leaked, response.text)
        if operation_id.startswith("bulk"):
            assert {r["code"] for r in response.json()["results"]} == {"order_not_found"}
        if operation_id in ("listOrders", "listAuditEvents"):
            assert response.json()["items"] == [], operation_id
        await stack.run_worker()  # anything a request queued has run before B is compared
        assert await snapshot(stack, b.shop.id) == before, operation_id


# The least role each shop-key route needs; every route with the ApiKey scheme must be listed.
LEAST_ROLE: dict[str, ApiKeyRole] = {
    "listOrders": ApiKeyRole.viewer,
    "countOrdersByStatus": ApiKeyRole.viewer,
    "getOrder": ApiKeyRole.viewer,
    "getCustomer": ApiKeyRole.viewer,
    "listCustomerLedger": ApiKeyRole.viewer,
    "getProgram": ApiKeyRole.viewer,
    "previewCashback": ApiKeyRole.viewer,  # computes, stores nothing
    "simulateProgram": ApiKeyRole.viewer,  # computes, stores nothing
    "getDashboardMetrics": ApiKeyRole.viewer,
    "getDailyMetrics": ApiKeyRole.viewer,
    "getTopCustomers": ApiKeyRole.viewer,
    "getCatalogProduct": ApiKeyRole.viewer,
    "getShopSettings": ApiKeyRole.viewer,
    "getOperation": ApiKeyRole.viewer,
    "streamEvents": ApiKeyRole.viewer,
    "approveOrder": ApiKeyRole.reviewer,
    "rejectOrder": ApiKeyRole.reviewer,
    "holdOrder": ApiKeyRole.reviewer,
    "releaseOrder": ApiKeyRole.reviewer,
    "processOrder": ApiKeyRole.reviewer,
    "bulkApproveOrders": ApiKeyRole.reviewer,
    "bulkRejectOrders": ApiKeyRole.reviewer,
    "listAuditEvents": ApiKeyRole.reviewer,
    "replaceProgram": ApiKeyRole.admin,
    "putCatalogProduct": ApiKeyRole.admin,
    "updateShopSettings": ApiKeyRole.admin,
    "listApiKeys": ApiKeyRole.admin,
    "createApiKey": ApiKeyRole.admin,
    "revokeApiKey": ApiKeyRole.admin,
}
RANK = {ApiKeyRole.viewer: 0, ApiKeyRole.reviewer: 1, ApiKeyRole.admin: 2}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


async def test_every_write_route_refuses_keys_below_its_role(stack: Stack) -> None:
    world = await build_world(stack, "alpha")
    keys = {role: await stack.add_key(world.shop, role) for role in ApiKeyRole}
    spec = operations(stack.client._transport.app.openapi())  # type: ignore[attr-defined]
    with_key = {
        op_id for op_id, (_, _, op) in spec.items() if {"ApiKey": []} in op.get("security", [])
    }
    assert with_key == set(LEAST_ROLE), (
        f"give each shop-key route its least role: missing {sorted(with_key - set(LEAST_ROLE))}"
    )
    own = probes(world, world.shop)  # aimed at the shop's own objects this time
    writes = [op_id for op_id in LEAST_ROLE if spec[op_id][0] in WRITES]
    assert len(writes) >= 12
    refused = 0
    for op_id in writes:
        least = LEAST_ROLE[op_id]
        for role in ApiKeyRole:
            if RANK[role] >= RANK[least]:
                continue
            before = await snapshot(stack, world.shop.id)
            response = await send(stack, own[op_id](), keys[role])
            assert (response.status_code, response.json()["code"]) == (403, "forbidden"), (
                op_id,
                role,
                response.text,
            )
            assert response.headers["content-type"] == "application/problem+json"
            await stack.run_worker()
            assert await snapshot(stack, world.shop.id) == before, (op_id, role)
            refused += 1
        allowed = await send(stack, own[op_id](), keys[least])
        assert allowed.status_code not in (401, 403), (op_id, least, allowed.text)
    assert refused >= 17


async def test_the_operator_route_needs_the_operator_token(stack: Stack) -> None:
    shop = await stack.create_shop()
    body = {"domain": "made-by-operator.myshopify.com"}
    for headers in ({}, shop.auth, {"Authorization": "Bearer wrong"}):
        response = await stack.client.post("/v1/admin/shops", headers=headers, json=body)
        assert (response.status_code, response.json()["code"]) == (401, "unauthorized")
    ok = await stack.client.post(
        "/v1/admin/shops", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, json=body
    )
    assert ok.status_code == 201
