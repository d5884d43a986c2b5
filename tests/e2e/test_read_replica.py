"""Reads that tolerate lag go to a real streaming replica; writes, and reads that must see them,
stay on the primary.

The test starts its own primary and replica (tests/replication.py) and holds the replica's
replay back while it writes: the lag of a busy replica, made certain. Then the lists, counts,
dashboard, ledger and audit pages still show the past, while the order itself, the balance and
the keys (authentication) are already the new ones; once replay resumes, the lists converge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from app import migrate
from app.config import Settings
from app.shops.models import ProcessingMode
from tests.e2e.test_paid_order_flow import balance_of, orders_of
from tests.payloads import new_order_id, paid_order
from tests.replication import (
    Cluster,
    Server,
    bindir,
    caught_up,
    pause_replay,
    resume_replay,
)
from tests.support import ShopHandle, Stack, open_stack, until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bindir() is None, reason="no PostgreSQL binaries (initdb, pg_basebackup)"),
]

DATABASE = "cashback"
CONVERGE_S = 30.0


@pytest.fixture(scope="module")
async def pair() -> AsyncIterator[tuple[Server, Server]]:
    """A primary, migrated, and its replica streaming from it."""
    cluster, primary, replica = await asyncio.to_thread(Cluster.start)
    try:
        admin = await asyncpg.connect(primary.dsn())
        try:
            await admin.execute(f'CREATE DATABASE "{DATABASE}"')
        finally:
            await admin.close()
        await asyncio.to_thread(migrate.upgrade, primary.url(DATABASE))
        yield primary, replica
    finally:
        await asyncio.to_thread(cluster.stop)


@pytest.fixture
async def replicated(settings: Settings, pair: tuple[Server, Server]) -> AsyncIterator[Stack]:
    """The app with writes on the primary and lag-tolerant reads on the replica."""
    primary, replica = pair
    both = settings.model_copy(
        update={"database_url": primary.url(DATABASE), "database_read_url": replica.url(DATABASE)}
    )
    try:
        async with open_stack(both) as stack:
            yield stack
    finally:
        await resume_replay(replica)  # however the test ended


async def listed(stack: Stack, shop: ShopHandle, path: str, **params: Any) -> Any:
    response = await stack.client.get(path, headers=shop.auth, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_lists_lag_behind_while_own_writes_read_fresh_then_converge(
    replicated: Stack, pair: tuple[Server, Server]
) -> None:
    primary, replica = pair
    stack = replicated
    shop = await stack.create_shop(mode=ProcessingMode.manual)
    await stack.deliver(shop, paid_order(id=new_order_id()))
    await stack.run_worker()
    await until(lambda: caught_up(primary, replica), CONVERGE_S, "the replica to catch up")
    [order] = await orders_of(stack, shop)
    assert order["status"] == "pending"
    customer = order["customer_id"]

    await pause_replay(replica)
    approved = await stack.client.post(f"/v1/orders/{order['id']}/approve", headers=shop.auth)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "processed"

    # What must see its own write reads the primary: the order, the balance.
    detail = await listed(stack, shop, f"/v1/orders/{order['id']}")
    assert (detail["status"], detail["credited_amount"]) == ("processed", "4.38")
    assert await balance_of(stack, shop, customer) == "4.38"
    # What tolerates lag reads the replica, which has not applied the approval yet.
    assert [o["status"] for o in await orders_of(stack, shop)] == ["pending"]
    counts = (await listed(stack, shop, "/v1/orders/counts"))["counts"]
    assert (counts["pending"], counts["processed"]) == (1, 0)
    dashboard = await listed(stack, shop, "/v1/metrics/dashboard")
    assert (dashboard["pending_count"], dashboard["processed_today"]) == (1, 0)
    assert (await listed(stack, shop, f"/v1/customers/{customer}/ledger"))["items"] == []
    actions = await audit_actions(stack, shop)
    assert "order.approved" not in actions
    csv = await stack.client.get("/v1/audit-events", headers={**shop.auth, "Accept": "text/csv"})
    assert csv.status_code == 200
    assert "order.approved" not in csv.text

    await resume_replay(replica)

    async def converged() -> bool:
        return [o["status"] for o in await orders_of(stack, shop)] == ["processed"]

    await until(converged, CONVERGE_S, "the order list to show the approval")
    counts = (await listed(stack, shop, "/v1/orders/counts"))["counts"]
    assert (counts["pending"], counts["processed"]) == (0, 1)
    dashboard = await listed(stack, shop, "/v1/metrics/dashboard")
    assert (dashboard["pending_count"], dashboard["processed_today"]) == (0, 1)
    ledger = (await listed(stack, shop, f"/v1/customers/{customer}/ledger"))["items"]
    assert [(e["kind"], e["amount"]) for e in ledger] == [("credit", "4.38")]
    assert "order.approved" in await audit_actions(stack, shop)


async def audit_actions(stack: Stack, shop: ShopHandle) -> list[str]:
    events = await listed(stack, shop, "/v1/audit-events")
    return [e["action"] for e in events["items"]]


async def test_keys_work_and_stop_at_once_on_reads_from_a_lagging_replica(
    replicated: Stack, pair: tuple[Server, Server]
) -> None:
    """Authentication reads the primary even for a read served by the replica."""
    primary, replica = pair
    stack = replicated
    shop = await stack.create_shop()
    await until(lambda: caught_up(primary, replica), CONVERGE_S, "the replica to catch up")
    await pause_replay(replica)

    created = await stack.client.post(
        "/v1/api-keys", headers=shop.auth, json={"name": "Ana", "role": "viewer"}
    )
    assert created.status_code == 201, created.text
    new_key = {"Authorization": f"Bearer {created.json()['api_key']}"}
    assert (await stack.client.get("/v1/orders", headers=new_key)).status_code == 200

    revoked = await stack.client.delete(f"/v1/api-keys/{created.json()['id']}", headers=shop.auth)
    assert revoked.status_code == 200, revoked.text
    assert (await stack.client.get("/v1/orders", headers=new_key)).status_code == 401
