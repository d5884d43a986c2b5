"""The read API the frontend uses: filters, pagination, tenancy and errors."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack


async def seed(stack: Stack, shop: ShopHandle, count: int, **overrides: Any) -> list[int]:
    ids = [new_order_id() for _ in range(count)]
    for order_id in ids:
        assert (await stack.deliver(shop, paid_order(id=order_id, **overrides))).status_code == 200
    await stack.run_worker()
    return ids


async def test_pages_walk_every_order_once_newest_first(stack: Stack) -> None:
    shop = await stack.create_shop()
    ids = await seed(stack, shop, 7)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = (await stack.client.get("/v1/orders", headers=shop.auth, params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(o["external_id"] for o in seen) == sorted(str(i) for i in ids)
    internal_ids = [int(o["id"]) for o in seen]
    assert internal_ids == sorted(internal_ids, reverse=True)


async def test_filters_by_status_external_id_and_customer(stack: Stack) -> None:
    shop = await stack.create_shop()
    [paid_id] = await seed(stack, shop, 1)
    [guest_id] = await seed(stack, shop, 1, customer=None)
    get = stack.client.get

    processed = await get("/v1/orders", headers=shop.auth, params={"status": "processed"})
    assert [o["external_id"] for o in processed.json()["items"]] == [str(paid_id)]
    both = await get(
        "/v1/orders", headers=shop.auth, params={"status": "processed,awaiting_customer"}
    )
    assert len(both.json()["items"]) == 2
    by_external = await get("/v1/orders", headers=shop.auth, params={"external_id": guest_id})
    assert [o["status"] for o in by_external.json()["items"]] == ["awaiting_customer"]
    customer_id = processed.json()["items"][0]["customer_id"]
    by_customer = await get("/v1/orders", headers=shop.auth, params={"customer_id": customer_id})
    assert [o["external_id"] for o in by_customer.json()["items"]] == [str(paid_id)]
    later = await get(
        "/v1/orders", headers=shop.auth, params={"created_from": "2999-01-01T00:00:00Z"}
    )
    assert later.json()["items"] == []


async def test_a_key_never_reaches_another_shops_orders_or_customers(stack: Stack) -> None:
    alice = await stack.create_shop()
    bob = await stack.create_shop()
    await seed(stack, alice, 1)
    [order] = (await stack.client.get("/v1/orders", headers=alice.auth)).json()["items"]

    assert (await stack.client.get("/v1/orders", headers=bob.auth)).json()["items"] == []
    for path in (
        f"/v1/orders/{order['id']}",
        f"/v1/customers/{order['customer_id']}",
        f"/v1/customers/{order['customer_id']}/ledger",
    ):
        response = await stack.client.get(path, headers=bob.auth)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"
        assert (await stack.client.get(path, headers=alice.auth)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer cbk_not-a-real-key"}, {"Authorization": "Basic abc"}],
)
async def test_requests_without_a_valid_key_are_401(stack: Stack, headers: dict[str, str]) -> None:
    response = await stack.client.get("/v1/orders", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"


async def test_bad_queries_get_problem_documents_not_500s(stack: Stack) -> None:
    shop = await stack.create_shop()
    get = stack.client.get
    cases: list[tuple[str, dict[str, Any], int, str]] = [
        ("/v1/orders", {"status": "shipped"}, 422, "invalid_status_filter"),
        ("/v1/orders", {"cursor": "not-a-cursor"}, 400, "invalid_cursor"),
        ("/v1/orders", {"limit": 0}, 422, "validation_error"),
        ("/v1/orders", {"limit": 201}, 422, "validation_error"),
        ("/v1/orders/abc", {}, 422, "validation_error"),
        ("/v1/orders/999999", {}, 404, "not_found"),
        ("/v1/customers/999999", {}, 404, "not_found"),
        ("/v1/nowhere", {}, 404, "not_found"),
    ]
    for path, params, status, code in cases:
        response = await get(path, headers=shop.auth, params=params)
        assert (response.status_code, response.json()["code"]) == (status, code), (path, params)
        assert response.headers["content-type"] == "application/problem+json"
    invalid = (await get("/v1/orders", headers=shop.auth, params={"limit": 0})).json()
    assert invalid["errors"][0]["field"] == "query.limit"


async def test_health_and_readiness(stack: Stack) -> None:
    assert (await stack.client.get("/healthz")).json() == {"status": "ok"}
    ready = await stack.client.get("/readyz")
    assert ready.json() == {"status": "ok", "database": "ok", "redis": "ok", "migrations": "ok"}
    async with stack.resources.engine.begin() as conn:  # a deploy ahead of its migration
        await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    behind = await stack.client.get("/readyz")
    assert behind.status_code == 503
    assert "schema at older" in behind.json()["detail"]
