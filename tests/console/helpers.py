"""Orders in the states the console tests need, made through signed webhooks and the worker."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlalchemy import update

from app.orders.models import Order
from tests.payloads import new_order_id, paid_order
from tests.support import ShopHandle, Stack, shopify_headers


async def deliver_over_http(
    url: str, shop: ShopHandle, payload: dict[str, Any], topic: str = "orders/paid"
) -> None:
    """A signed Shopify webhook to the running service, over real HTTP."""
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        response = await client.post(
            "/webhooks/shopify", content=body, headers=shopify_headers(shop, body, topic=topic)
        )
    assert response.status_code == 200, response.text


async def orders(stack: Stack, shop: ShopHandle, count: int, **fields: Any) -> list[dict[str, Any]]:
    """`count` sample orders delivered and worked; as GET /v1/orders/{id} shows them."""
    ids = [new_order_id() for _ in range(count)]
    for external_id in ids:
        assert (await stack.deliver(shop, paid_order(id=external_id, **fields))).status_code == 200
    await stack.run_worker(max_jobs=20)
    return [await stack.order(shop, external_id) for external_id in ids]


async def failed_order(stack: Stack, shop: ShopHandle) -> dict[str, Any]:
    """An order whose credit failed, with its customer known: Process cashback retries it.
    (Failing for real needs Shopify to refuse the store credit; the state is set directly.)"""
    [credited] = await orders(stack, shop, 1)  # creates the sample customer
    [waiting] = await orders(stack, shop, 1, customer=None)
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Order)
            .where(Order.id == int(waiting["id"]))
            .values(
                status="failed",
                customer_id=int(credited["customer_id"]),
                last_error="Shopify refused the store credit (503)",
            )
        )
        await session.commit()
    return await stack.order(shop, waiting["external_id"])


async def put_program(stack: Stack, shop: ShopHandle, **program: Any) -> None:
    response = await stack.client.put("/v1/program", headers=shop.auth, json=program)
    assert response.status_code == 200, response.text
