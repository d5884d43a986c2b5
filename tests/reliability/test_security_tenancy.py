"""Tenant isolation and roles, route by route from the OpenAPI document.

Shop A's admin key is aimed at shop B's objects on every route: each answers 404 (or serves
only A's own data) and none of B's rows change. A route the matrices do not know fails the
test, so a new route cannot ship without saying how it is isolated and who may call it.
"""

from __future__ import annotations

from app.shops.models import ApiKeyRole
from tests.reliability.sec_routes import api_spec, operations, probes, send
from tests.reliability.sec_world import build_world, snapshot
from tests.support import ADMIN_TOKEN, Stack

# Routes whose isolation another test proves, and why they are not probed here.
PROVEN_ELSEWHERE = {
    # An endless SSE stream: tests/events/test_stream.py
    # test_a_shop_receives_its_own_order_status_changes_only sends B's changes while A listens.
    "streamEvents",
}


async def test_shop_a_cannot_see_or_change_shop_b_on_any_route(stack: Stack) -> None:
    b = await build_world(stack, "bravo")
    a = await stack.create_shop()
    spec = api_spec(stack)
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
    "getMe": ApiKeyRole.viewer,
    "getOperation": ApiKeyRole.viewer,
    "getWeeklyAudit": ApiKeyRole.viewer,
    "streamEvents": ApiKeyRole.viewer,
    "approveOrder": ApiKeyRole.reviewer,
    "redeemCredit": ApiKeyRole.reviewer,
    "rejectOrder": ApiKeyRole.reviewer,
    "holdOrder": ApiKeyRole.reviewer,
    "releaseOrder": ApiKeyRole.reviewer,
    "processOrder": ApiKeyRole.reviewer,
    "bulkApproveOrders": ApiKeyRole.reviewer,
    "bulkRejectOrders": ApiKeyRole.reviewer,
    "listAuditEvents": ApiKeyRole.reviewer,
    "replaceProgram": ApiKeyRole.admin,
    "replaceCatalogProduct": ApiKeyRole.admin,
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
