"""Property: no sequence of webhooks, review actions and mode switches reaches an illegal
status or credits an order twice. Each example runs on a fresh database with the real app
and a real worker."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.config import Environment, Settings
from app.core.resources import Resources
from app.ledger.models import LedgerEntry
from app.main import create_app
from app.orders.models import Order
from app.orders.state import CREDITED, OrderStatus, can_transition
from tests.conftest import TEMPLATE_DB, libpq_url, with_database
from tests.payloads import paid_order
from tests.support import ADMIN_TOKEN, Stack

ORDER_ID = 4242
ACTIONS = [
    "paid",
    "created_unpaid",
    "approve",
    "approve_adjusted",
    "reject",
    "hold",
    "release",
    "process",
    "manual",
    "automatic",
    "hold_first_orders",
    "worker",
]


async def act(stack: Stack, shop: Any, action: str) -> None:
    client = stack.client
    order_ids = [
        o["id"] for o in (await client.get("/v1/orders", headers=shop.auth)).json()["items"]
    ]
    target = f"/v1/orders/{order_ids[0]}" if order_ids else "/v1/orders/0"
    match action:
        case "paid":
            await stack.deliver(shop, paid_order(id=ORDER_ID))
        case "created_unpaid":
            stale = paid_order(
                id=ORDER_ID, financial_status="pending", updated_at="2026-11-20T10:00:00-05:00"
            )
            await stack.deliver(shop, stale, topic="orders/create")
        case "approve":
            await client.post(f"{target}/approve", headers=shop.auth)
        case "approve_adjusted":
            await client.post(
                f"{target}/approve", headers=shop.auth, json={"amount": "1.00", "note": "goodwill"}
            )
        case "reject":
            await client.post(f"{target}/reject", headers=shop.auth, json={"reason": "no"})
        case "hold":
            await client.post(f"{target}/hold", headers=shop.auth, json={"reason": "look"})
        case "release":
            await client.post(f"{target}/release", headers=shop.auth)
        case "process":
            await client.post(
                f"{target}/process", headers=shop.auth, json={"expected_amount": "4.38"}
            )
        case "manual" | "automatic":
            await client.patch(
                "/v1/shop/settings",
                headers=shop.auth,
                json={"processing_mode": action, "pending_orders": "keep"},
            )
        case "hold_first_orders":
            await client.patch(
                "/v1/shop/settings", headers=shop.auth, json={"hold_rules": {"first_order": True}}
            )
        case "worker":
            await stack.run_worker()


async def check_invariants(stack: Stack) -> None:
    async with stack.resources.sessionmaker() as session:
        order = await session.scalar(select(Order))
        credits = await session.scalar(select(func.count()).select_from(LedgerEntry))
        events = list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    if order is None:
        assert credits == 0
        return
    status = OrderStatus(order.status)  # raises for a status the state machine does not know
    assert credits == (1 if status in CREDITED else 0), (status, credits)
    for event in events:  # every recorded move was legal
        if event.subject_type == "order" and event.before:
            before, after = event.before["status"], (event.after or {}).get("status")
            assert after is not None and can_transition(OrderStatus(before), OrderStatus(after))


async def scenario(servers: tuple[str, str], actions: list[str]) -> None:
    name = f"cashback_prop_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(libpq_url(servers[0]))
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
    cfg = Settings(
        env=Environment.test,
        database_url=with_database(servers[0], name),
        redis_url=servers[1],
        admin_token=SecretStr(ADMIN_TOKEN),
        secret_key=SecretStr("test-secret-key"),
        data_dir=Path("/tmp"),
        queue_name=f"cashback:prop:{uuid.uuid4().hex}",
        worker_poll_delay=0.01,
    )
    resources = Resources.open(cfg)
    try:
        transport = httpx.ASGITransport(app=create_app(cfg, resources))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            stack = Stack(cfg, resources, client)
            shop = await stack.create_shop()
            for action in actions:
                await act(stack, shop, action)
                await check_invariants(stack)
            await stack.run_worker()
            await check_invariants(stack)
    finally:
        await resources.broker.redis.delete(cfg.queue_name)
        await resources.close()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions=st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=14))
def test_no_sequence_reaches_an_illegal_status_or_a_second_credit(
    servers: tuple[str, str], template_url: str, actions: list[str]
) -> None:
    asyncio.run(scenario(servers, actions))
