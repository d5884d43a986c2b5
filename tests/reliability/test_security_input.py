"""Hostile input: unknown fields, oversized and endless bodies, huge pages and bulk requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from tests.payloads import new_order_id, paid_order
from tests.reliability.sec_routes import api_spec, operations, probes, send
from tests.reliability.sec_world import build_world, snapshot
from tests.support import ADMIN_TOKEN, Stack, shopify_headers

SMUGGLED = {"status": "processed", "amount": "999.00", "shop_id": 1}
# The webhook takes Shopify's payload as it comes (unknown fields are Shopify's to add).
RAW_BODIES = {"receiveShopifyWebhook"}


async def test_every_request_body_refuses_unknown_fields(stack: Stack) -> None:
    world = await build_world(stack, "mass")
    api = api_spec(stack)
    spec = operations(api)
    with_body = {op_id for op_id, (_, _, op) in spec.items() if "requestBody" in op}
    own = probes(world, world.shop)
    own["createShop"] = own_shop_probe
    checked = 0
    for op_id in sorted(with_body - RAW_BODIES):
        probe = own[op_id]()
        base = probe.json if isinstance(probe.json, dict) else {}
        probe.json = base | SMUGGLED
        if op_id == "createShop":
            probe.headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        before = await snapshot(stack, world.shop.id)
        response = await send(stack, probe, world.shop.auth)
        assert response.status_code == 422, (op_id, response.text)
        problem = response.json()
        assert response.headers["content-type"] == "application/problem+json"
        assert problem["code"] == "validation_error"
        named = {error["field"].rsplit(".", 1)[-1] for error in problem["errors"]}
        unknown = set(SMUGGLED) - declared_fields(api, spec[op_id][2])
        assert unknown, op_id
        assert unknown <= named, (op_id, problem)
        await stack.run_worker()
        assert await snapshot(stack, world.shop.id) == before, op_id
        checked += 1
    assert checked == len(with_body - RAW_BODIES) >= 13


def declared_fields(api: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    """The top-level fields the operation's JSON body declares."""
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    fields: set[str] = set()
    for option in schema.get("anyOf", [schema]):
        name = option.get("$ref", "").rsplit("/", 1)[-1]
        resolved = api["components"]["schemas"][name] if name else option
        fields |= set(resolved.get("properties", {}))
    return fields


def own_shop_probe() -> Any:
    from tests.reliability.sec_routes import Probe

    return Probe("POST", "/v1/admin/shops", json={"domain": "mass.myshopify.com"})


async def chunks(total: int, size: int = 4096) -> AsyncIterator[bytes]:
    """A body sent chunked, with no Content-Length: not even valid JSON, so only a limit that
    counts bytes before parsing can answer 413 rather than 422."""
    yield b'{"pad": "'
    sent = 0
    while sent < total:
        yield b"x" * size
        sent += size


async def test_bodies_past_the_limit_are_refused_before_parsing(stack: Stack) -> None:
    world = await build_world(stack, "bulky")
    limit = stack.settings.body_limit
    before = await snapshot(stack, world.shop.id)
    big_json = json.dumps({"base_rate": "5", "pad": "x" * limit}).encode()
    webhook = json.dumps(paid_order(id=new_order_id(), note="x" * limit)).encode()
    cases: dict[str, dict[str, Any]] = {
        "JSON route, Content-Length": dict(
            method="PUT", url="/v1/program", content=big_json, headers=world.shop.auth
        ),
        "JSON route, chunked": dict(
            method="PUT", url="/v1/program", content=chunks(limit), headers=world.shop.auth
        ),
        "review route, chunked": dict(
            method="POST",
            url=f"/v1/orders/{world.pending_order_id}/reject",
            content=chunks(limit),
            headers=world.shop.auth,
        ),
        "webhook, Content-Length": dict(
            method="POST",
            url="/webhooks/shopify",
            content=webhook,
            headers=shopify_headers(world.shop, webhook),
        ),
        "webhook, chunked": dict(
            method="POST",
            url="/webhooks/shopify",
            content=chunks(limit),
            headers=shopify_headers(world.shop, b"unknown"),
        ),
    }
    for name, request in cases.items():
        headers = dict(request.pop("headers")) | {"Content-Type": "application/json"}
        response = await stack.client.request(headers=headers, **request)
        if "chunked" in name:
            assert "content-length" not in {k.lower() for k in response.request.headers}
        assert response.status_code == 413, (name, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "payload_too_large"
    await stack.run_worker()
    assert await snapshot(stack, world.shop.id) == before
    # Just under the limit is stored as usual.
    order = paid_order(id=new_order_id(), note="")
    room = limit - len(json.dumps(order).encode())
    fits = json.dumps(order | {"note": "x" * (room - 10)}).encode()
    assert limit - 20 < len(fits) <= limit
    stored = await stack.client.post(
        "/webhooks/shopify", content=fits, headers=shopify_headers(world.shop, fits)
    )
    assert stored.json() == {"result": "accepted"}


async def test_page_sizes_and_bulk_sizes_are_capped(stack: Stack) -> None:
    world = await build_world(stack, "pages")
    spec = operations(api_spec(stack))
    paged = [
        (path, op_id, param["schema"]["maximum"])
        for op_id, (method, path, op) in spec.items()
        for param in op.get("parameters", [])
        if method == "GET" and param["name"] == "limit"
    ]
    assert len(paged) >= 3
    own = probes(world, world.shop)
    for path, op_id, maximum in paged:
        assert maximum <= 200, path
        probe = own[op_id]()
        for limit, status in ((maximum + 1, 422), (10_000, 422), (0, 422), (maximum, 200)):
            probe.params = dict(probe.params) | {"limit": limit}
            if op_id == "getTopCustomers":
                probe.params["days"] = 30
            response = await send(stack, probe, world.shop.auth)
            assert response.status_code == status, (path, limit, response.text)
            if status == 422:
                assert response.json()["errors"][0]["field"] == "query.limit"

    before = await snapshot(stack, world.shop.id)
    for url, extra in (
        ("/v1/orders/bulk-approve", {}),
        ("/v1/orders/bulk-reject", {"reason": "too many"}),
    ):
        too_many = {"ids": [int(world.pending_order_id)] * 501} | extra
        response = await stack.client.post(url, headers=world.shop.auth, json=too_many)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "body.ids"
    assert await snapshot(stack, world.shop.id) == before
    most = {"ids": list(range(10**9, 10**9 + 500))}
    allowed = await stack.client.post("/v1/orders/bulk-approve", headers=world.shop.auth, json=most)
    assert allowed.status_code == 200
    assert len(allowed.json()["results"]) == 500
