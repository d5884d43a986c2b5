"""Shared steps of the expiry tests: a shop with an expiring program, credited orders through
the real worker, the expiry cron run at a chosen instant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.resources import Resources
from app.expiry import tasks
from tests.payloads import customer_account, new_order_id, paid_order
from tests.support import ShopHandle, Stack


async def set_program(stack: Stack, shop: ShopHandle, **rules: Any) -> dict[str, Any]:
    response = await stack.client.put("/v1/program", headers=shop.auth, json=rules)
    assert response.status_code == 200, response.text
    program: dict[str, Any] = response.json()
    return program


async def expiring_shop(
    stack: Stack, *, days: int | None = 30, timezone: str = "America/New_York", **settings: Any
) -> ShopHandle:
    shop = await stack.create_shop()
    response = await stack.client.patch(
        "/v1/shop/settings", headers=shop.auth, json={"timezone": timezone, **settings}
    )
    assert response.status_code == 200, response.text
    await set_program(stack, shop, credit_expiry_days=days, reminder_days_before=[7, 1])
    return shop


async def credit_order(
    stack: Stack, shop: ShopHandle, *, customer: int = 115310627314723954
) -> dict[str, Any]:
    """A paid order (4.38 of cashback) credited by the real worker; returns it as the API
    shows it."""
    order_id = new_order_id()
    payload = paid_order(id=order_id, customer=customer_account(customer))
    assert (await stack.deliver(shop, payload)).status_code == 200
    await stack.run_worker()
    order = await stack.order(shop, order_id)
    assert order["status"] == "processed", order
    return order


async def ledger(stack: Stack, shop: ShopHandle, customer_id: str) -> list[dict[str, Any]]:
    response = await stack.client.get(f"/v1/customers/{customer_id}/ledger", headers=shop.auth)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def customer(stack: Stack, shop: ShopHandle, customer_id: str) -> dict[str, Any]:
    response = await stack.client.get(f"/v1/customers/{customer_id}", headers=shop.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def redeem(
    stack: Stack, shop: ShopHandle, customer_id: str, amount: str, reference: str, **kw: Any
) -> Any:
    return await stack.client.post(
        f"/v1/customers/{customer_id}/redemptions",
        headers=kw.pop("headers", shop.auth),
        json={"amount": amount, "reference": reference},
        **kw,
    )


async def sweep(stack: Stack, now: datetime, resources: Resources | None = None) -> dict[str, int]:
    """The expiry cron, as the worker runs it at `now`."""
    return await tasks.sweep_expiring_credit({"resources": resources or stack.resources}, now)


def parse(at: str) -> datetime:
    return datetime.fromisoformat(at.replace("Z", "+00:00"))
