"""Stateful property: random interleavings of webhooks, refunds, cancellations, mode switches
and review actions, each followed by a real worker run, checked after every step against a
simple model of what the merchant expects.

The app runs over ASGI on a fresh database per example, with a real arq worker in burst mode.
Every order is Shopify's sample order (two shoes earning 1.80 each and socks earning 0.78:
4.38 in all), so every amount the model predicts is exact.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from pydantic import SecretStr
from sqlalchemy import func, select

from app.config import Environment, Settings
from app.core.resources import Resources
from app.ledger.models import EntryKind, LedgerEntry
from app.main import create_app
from tests.conftest import TEMPLATE_DB, libpq_url, with_database
from tests.payloads import SHOES, SOCKS, paid_order, refund, refund_lines
from tests.support import ADMIN_TOKEN, ShopHandle, Stack

pytestmark = pytest.mark.slow

ORDERS = 2  # order keys 0 and 1; a small world keeps collisions (and interesting cases) likely
SHOE, SOCK = 180, 78  # cashback per unit, minor units
UNDECIDED = {"pending", "held"}
CREDITED = {"processed", "partially_reversed"}


@dataclass
class ModelOrder:
    status: str = "absent"
    cashback: int = 2 * SHOE + SOCK
    credited: int = 0
    reversed: int = 0
    shoes: int = 2  # not yet refunded
    socks: int = 1
    paid_event: str | None = None
    early_refunds: list[tuple[int, int]] = field(default_factory=list)

    @property
    def remaining_cashback(self) -> int:
        return self.shoes * SHOE + self.socks * SOCK

    def refund(self, shoes: int, socks: int) -> None:
        self.shoes -= shoes
        self.socks -= socks
        if self.status in UNDECIDED:
            # Before credit a refund lowers the cashback; all of it refunded: nothing to award.
            self.cashback = self.remaining_cashback
            if self.cashback == 0:
                self.status = "rejected"
        elif self.status in CREDITED:
            self.reversed = min(self.credited, self.reversed + shoes * SHOE + socks * SOCK)
            self.status = "reversed" if self.reversed == self.credited else "partially_reversed"

    def credit(self) -> None:
        self.credited = self.cashback
        self.status = "processed"


class Ledger(RuleBasedStateMachine):
    servers: tuple[str, str]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.mode = "automatic"
        self.orders = [ModelOrder() for _ in range(ORDERS)]
        self.external_ids = [9_300_000_000_000_000_000 + n for n in range(ORDERS)]
        self.refund_ids = itertools.count(7_000_000)
        self.run(self._open())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _open(self) -> None:
        self.db_name = f"cashback_stateful_{uuid.uuid4().hex[:12]}"
        self.admin = await asyncpg.connect(libpq_url(self.servers[0]))
        await self.admin.execute(f'CREATE DATABASE "{self.db_name}" TEMPLATE "{TEMPLATE_DB}"')
        self.cfg = Settings(
            env=Environment.test,
            database_url=with_database(self.servers[0], self.db_name),
            redis_url=self.servers[1],
            admin_token=SecretStr(ADMIN_TOKEN),
            secret_key=SecretStr("test-secret-key"),
            data_dir=Path("/tmp"),
            queue_name=f"cashback:stateful:{uuid.uuid4().hex}",
            worker_poll_delay=0.01,
        )
        self.resources = Resources.open(self.cfg)
        transport = httpx.ASGITransport(app=create_app(self.cfg, self.resources))
        self.client = httpx.AsyncClient(transport=transport, base_url="http://test")
        self.stack = Stack(self.cfg, self.resources, self.client)
        self.shop: ShopHandle = await self.stack.create_shop()

    def teardown(self) -> None:
        async def close() -> None:
            await self.client.aclose()
            await self.resources.broker.redis.delete(self.cfg.queue_name)
            await self.resources.close()
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            await self.admin.close()

        try:
            self.run(close())
        finally:
            self.loop.close()

    # --- what the merchant's systems do -------------------------------------------------

    def payload(self, key: int, **overrides: Any) -> dict[str, Any]:
        return paid_order(id=self.external_ids[key], **overrides)

    async def deliver(self, body: dict[str, Any], topic: str, event_id: str | None = None) -> None:
        response = await self.stack.deliver(self.shop, body, topic=topic, event_id=event_id)
        assert response.status_code == 200, response.text
        await self.stack.run_worker()

    async def order_id(self, key: int) -> str | None:
        listing = await self.client.get(
            "/v1/orders", headers=self.shop.auth, params={"external_id": self.external_ids[key]}
        )
        items = listing.json()["items"]
        return items[0]["id"] if items else None

    @rule(key=st.integers(0, ORDERS - 1))
    def order_paid(self, key: int) -> None:
        """orders/paid; for a known order, the same order under a new event id."""
        order = self.orders[key]
        event = str(uuid.uuid4())
        self.run(self.deliver(self.payload(key), "orders/paid", event))
        if order.status != "absent":
            return  # a repeat changes nothing
        order.paid_event = event
        if self.mode == "automatic":
            order.credit()
        else:
            order.status = "pending"
        for shoes, socks in order.early_refunds:  # refunds that arrived before the order
            order.refund(shoes, socks)
        order.early_refunds.clear()  # applied: the lines left are counted in `order` now

    @rule(key=st.integers(0, ORDERS - 1))
    def duplicate_delivery(self, key: int) -> None:
        """Shopify redelivers the very same event: stored once, nothing changes."""
        event = self.orders[key].paid_event
        if event is not None:
            self.run(self.deliver(self.payload(key), "orders/paid", event))

    @rule(key=st.integers(0, ORDERS - 1), everything=st.booleans())
    def refund(self, key: int, everything: bool) -> None:
        order = self.orders[key]
        pending_shoes = order.shoes - sum(s for s, _ in order.early_refunds)
        pending_socks = order.socks - sum(s for _, s in order.early_refunds)
        shoes, socks = (pending_shoes, pending_socks) if everything else (min(1, pending_shoes), 0)
        assert shoes >= 0 and socks >= 0, "the model never refunds what it does not have"
        if shoes + socks == 0:
            return  # nothing left to refund
        lines = [(line, qty) for line, qty in ((SHOES, shoes), (SOCKS, socks)) if qty]
        body = refund(
            id=next(self.refund_ids),
            order_id=self.external_ids[key],
            refund_line_items=refund_lines(*lines),
        )
        self.run(self.deliver(body, "refunds/create"))
        if order.status == "absent":
            order.early_refunds.append((shoes, socks))
        else:
            order.refund(shoes, socks)

    @rule(key=st.integers(0, ORDERS - 1))
    def cancel(self, key: int) -> None:
        order = self.orders[key]
        if order.status == "absent":
            return
        cancelled = self.payload(
            key, cancelled_at="2026-11-25T10:00:00-05:00", updated_at="2026-11-25T10:00:00-05:00"
        )
        self.run(self.deliver(cancelled, "orders/cancelled"))
        if order.status in UNDECIDED:
            order.status = "rejected"
        elif order.status in CREDITED:
            order.reversed = order.credited
            order.status = "reversed"

    # --- what the merchant does -----------------------------------------------------------

    @rule(
        mode=st.sampled_from(["manual", "automatic"]),
        pending=st.sampled_from([None, "keep", "process"]),
    )
    def switch_mode(self, mode: str, pending: str | None) -> None:
        body: dict[str, Any] = {"processing_mode": mode}
        if pending is not None:
            body["pending_orders"] = pending
        waiting = [o for o in self.orders if o.status == "pending"]

        async def switch() -> httpx.Response:
            response = await self.client.patch(
                "/v1/shop/settings", headers=self.shop.auth, json=body
            )
            await self.stack.run_worker()
            return response

        response = self.run(switch())
        if mode == "automatic" and self.mode == "manual" and waiting and pending is None:
            assert response.status_code == 409, response.text
            assert response.json()["pending_count"] == len(waiting)
            return
        assert response.status_code == 200, response.text
        if mode == "automatic" and self.mode == "manual" and pending == "process":
            for order in waiting:
                order.credit()
        self.mode = mode

    @rule(
        key=st.integers(0, ORDERS - 1),
        action=st.sampled_from(["approve", "reject", "hold", "release"]),
    )
    def review(self, key: int, action: str) -> None:
        order = self.orders[key]
        allowed = {
            "approve": UNDECIDED,
            "reject": UNDECIDED,
            "hold": {"pending"},
            "release": {"held"},
        }[action]

        async def act() -> httpx.Response | None:
            order_id = await self.order_id(key)
            if order_id is None:
                return None
            body = {"reason": "checked"} if action in ("reject", "hold") else None
            response = await self.client.post(
                f"/v1/orders/{order_id}/{action}", headers=self.shop.auth, json=body
            )
            await self.stack.run_worker()
            return response

        response = self.run(act())
        if response is None:
            assert order.status == "absent"
            return
        if order.status not in allowed:
            assert response.status_code == 409, (action, order.status, response.text)
            return
        assert response.status_code == 200, (action, order.status, response.text)
        if action == "approve" or (action == "release" and self.mode == "automatic"):
            order.credit()
        elif action == "reject":
            order.status = "rejected"
        elif action == "hold":
            order.status = "held"
        else:
            order.status = "pending"

    # --- what must hold after every step --------------------------------------------------

    @invariant()
    def matches_the_model(self) -> None:
        self.run(self._check())

    async def _check(self) -> None:
        customer_ids = set()
        for key, expected in enumerate(self.orders):
            order_id = await self.order_id(key)
            if expected.status == "absent":
                assert order_id is None, key
                continue
            assert order_id is not None, key
            got = (await self.client.get(f"/v1/orders/{order_id}", headers=self.shop.auth)).json()
            customer_ids.add(got["customer_id"])
            assert (got["status"], got["credited_amount"], got["reversed_amount"]) == (
                expected.status,
                money(expected.credited),
                money(expected.reversed),
            ), (key, got["status"], got["history"], expected)
            if expected.status in UNDECIDED:
                assert got["cashback_amount"] == money(expected.cashback), (key, got, expected)

        async with self.resources.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(
                        LedgerEntry.order_id,
                        LedgerEntry.kind,
                        func.count(),
                        func.sum(LedgerEntry.amount),
                    )
                    .where(LedgerEntry.shop_id == self.shop.id)
                    .group_by(LedgerEntry.order_id, LedgerEntry.kind)
                )
            ).all()
            total = await session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
                    LedgerEntry.shop_id == self.shop.id
                )
            )
        credits = {
            order: (count, amount)
            for order, kind, count, amount in rows
            if kind == EntryKind.credit
        }
        reversals = {
            order: -amount for order, kind, _, amount in rows if kind == EntryKind.reversal
        }
        for order, (count, amount) in credits.items():
            assert count == 1, f"order {order} credited {count} times"
            assert reversals.get(order, 0) <= amount, f"order {order} reversed more than credited"
        assert set(reversals) <= set(credits), "a reversal without a credit"
        expected_balance = sum(o.credited - o.reversed for o in self.orders)
        assert total == expected_balance
        for customer_id in customer_ids - {None}:
            customer = await self.client.get(f"/v1/customers/{customer_id}", headers=self.shop.auth)
            assert customer.json()["balance"] == money(expected_balance)  # one customer
        # The dashboard's queues are counters kept by each status change: they follow the model.
        figures = await self.client.get("/v1/metrics/dashboard", headers=self.shop.auth)
        queues = {status: figures.json()[f"{status}_count"] for status in ("pending", "held")}
        assert queues == {
            status: sum(o.status == status for o in self.orders) for status in ("pending", "held")
        }, queues


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def test_random_interleavings_match_the_model(servers: tuple[str, str], template_url: str) -> None:
    Ledger.servers = servers
    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=20,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
