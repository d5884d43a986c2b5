"""A worker killed with SIGKILL at each point of processing an order: before the ledger commit,
after it but before the job finished, and while it calls Shopify. A fresh worker and the sweeper
finish the work, and the ledger and the Shopify stand-in end as in a fault-free run.

The worker is a real process (`cashback worker`). It is paused where it must die without any
hook in the service: a test-only trigger in the test's own database makes the credit's INSERT
wait on an advisory lock the test holds; a TCP proxy freezes the worker's Redis right after its
commit; the Shopify stand-in holds the store-credit call.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from sqlalchemy import select
from starlette.responses import Response

from app.core import jobs as job_runner
from app.credit_sync.models import CreditSync
from app.ledger.models import LedgerEntry
from tests.conftest import libpq_url
from tests.credit_sync.helpers import CUSTOMER, configure_shop
from tests.payloads import paid_order
from tests.reliability.invariants import assert_accounted, assert_invariants
from tests.reliability.proxy import TcpProxy
from tests.shopify.admin_standin import FakeShopify, running
from tests.support import ShopHandle, Stack, until
from workers.sweeper import redrive

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 5  # the killed job is taken over once its in-progress mark expires (+10 s)
LOCK_KEY = 942_001
RECOVERY_LIMIT_S = 90


class HeldShopify(FakeShopify):
    """The stand-in, holding the next store-credit mutation until released (then applying it,
    as Shopify does with a request whose client went away)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.hold = False

    async def _mutation(
        self, version: str, kind: str, owner: str, data: dict[str, Any]
    ) -> Response:
        if self.hold:
            self.hold = False
            self.entered.set()
            await self.release.wait()
        return await super()._mutation(version, kind, owner, data)


def redis_address(url: str) -> tuple[tuple[str, int] | str, str]:
    """(where the Redis of `url` listens: host and port, or the embedded server's unix socket
    path; its database number)."""
    parsed = urlsplit(url)
    if parsed.scheme == "unix":
        return parsed.path, parse_qs(parsed.query).get("db", ["0"])[0]
    return (parsed.hostname or "127.0.0.1", parsed.port or 6379), parsed.path.lstrip("/") or "0"


def worker_env(stack: Stack, redis_url: str | None = None) -> dict[str, str]:
    s = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASHBACK_")}
    return env | {
        "CASHBACK_ENV": "test",
        "CASHBACK_DATABASE_URL": s.database_url or "",
        "CASHBACK_REDIS_URL": redis_url or s.redis_url or "",
        "CASHBACK_QUEUE_NAME": s.queue_name,
        "CASHBACK_SECRET_KEY": s.secret_key.get_secret_value(),
        "CASHBACK_ADMIN_TOKEN": s.admin_token.get_secret_value(),
        "CASHBACK_WORKER_POLL_DELAY": "0.05",
        "CASHBACK_WORKER_METRICS_PORT": "0",
        "CASHBACK_HTTP_TIMEOUT_S": "2",
        "CASHBACK_LOG_FORMAT": "text",
        "RELIABILITY_JOB_TIMEOUT_S": str(JOB_TIMEOUT_S),
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(os.environ.get("RELIABILITY_WORKER_LOG", os.devnull), "ab")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.worker_process"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def db(stack: Stack) -> asyncpg.Connection:
    return await asyncpg.connect(libpq_url(stack.settings.database_url or ""))


async def hold_ledger_inserts(conn: asyncpg.Connection) -> None:
    """The first credit INSERT waits for the advisory lock `conn` now holds."""
    await conn.execute(
        f"""
        CREATE SEQUENCE fault_hold_ledger;
        CREATE FUNCTION fault_hold_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF nextval('fault_hold_ledger') = 1 THEN PERFORM pg_advisory_xact_lock({LOCK_KEY});
          END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER fault_hold_ledger BEFORE INSERT ON ledger_entries
          FOR EACH ROW EXECUTE FUNCTION fault_hold_ledger();
        SELECT pg_advisory_lock({LOCK_KEY});
        """
    )


async def waiting_on_lock(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND objid = $1",
            LOCK_KEY,
        )
    )


async def state(stack: Stack, shop: ShopHandle) -> dict[str, Any]:
    async with stack.resources.sessionmaker() as session:
        entries = list(
            await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount, CreditSync.status)
                .outerjoin(CreditSync, CreditSync.ledger_entry_id == LedgerEntry.id)
                .where(LedgerEntry.shop_id == shop.id)
                .order_by(LedgerEntry.id)
            )
        )
    order = await stack.order(shop, paid_order()["id"])
    return {
        "entries": [(kind, amount, str(status)) for kind, amount, status in entries],
        "order": (order["status"], order["credited_amount"]),
    }


@pytest.fixture(autouse=True)
def same_job_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweeper (run here) knows the job timeout the worker processes run with."""
    monkeypatch.setattr(job_runner, "JOB_TIMEOUT_S", JOB_TIMEOUT_S)  # read by the sweeper


@pytest.fixture
async def baseline(stack: Stack) -> dict[str, Any]:
    """The fault-free run: the sample order through an in-process worker."""
    async with running(FakeShopify()) as shopify:
        shop = await stack.create_shop()
        await configure_shop(stack, shop, shopify)
        assert (await stack.deliver(shop, paid_order())).status_code == 200
        await stack.run_worker()
        result = await state(stack, shop)
        result["shopify"] = (shopify.balance(CUSTOMER), len(shopify.mutations))
    assert result["entries"] == [("credit", 438, "synced")]
    return result


@pytest.fixture
async def shopify() -> AsyncIterator[HeldShopify]:
    standin = HeldShopify()
    async with running(standin):
        yield standin


async def recover(
    stack: Stack, shop: ShopHandle, shopify: HeldShopify, expected: dict[str, Any]
) -> float:
    """A fresh worker plus the sweeper until the shop matches the fault-free run; returns the
    seconds it took."""
    fresh = start_worker(worker_env(stack))
    started = time.monotonic()
    try:

        async def done() -> bool:
            await redrive(stack.resources, datetime.now(UTC) + timedelta(minutes=1))
            await asyncio.sleep(0.5)
            current = await state(stack, shop) if await stack.credit_count(shop) else {}
            return bool(current) and current["entries"] == expected["entries"]

        await until(done, RECOVERY_LIMIT_S, "the fresh worker to finish the order")
        return time.monotonic() - started
    finally:
        stop(fresh)


async def assert_as_fault_free(
    stack: Stack, shop: ShopHandle, shopify: HeldShopify, expected: dict[str, Any]
) -> None:
    assert (
        await state(stack, shop) | {"shopify": (shopify.balance(CUSTOMER), len(shopify.mutations))}
        == expected
    )
    await assert_accounted(stack.resources.sessionmaker, shop.id, [paid_order()["id"]])
    await assert_invariants(stack.resources.sessionmaker)


async def test_killed_before_the_ledger_commit(
    stack: Stack, shopify: HeldShopify, baseline: dict[str, Any]
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify)
    conn = await db(stack)
    try:
        await hold_ledger_inserts(conn)
        assert (await stack.deliver(shop, paid_order())).status_code == 200
        doomed = start_worker(worker_env(stack))
        await until(lambda: waiting_on_lock(conn), 60, "the worker to reach the ledger INSERT")
        doomed.kill()
        doomed.wait()
    finally:
        await conn.close()  # the lock goes; the dead worker's transaction is rolled back
    assert await stack.credit_count(shop) == 0

    recovered = await recover(stack, shop, shopify, baseline)
    print(f"\nkilled before the ledger commit: recovered in {recovered:.1f}s")
    await assert_as_fault_free(stack, shop, shopify, baseline)


async def test_killed_after_the_ledger_commit_before_the_job_finished(
    stack: Stack, shopify: HeldShopify, baseline: dict[str, Any]
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify)
    redis_target, database = redis_address(stack.settings.redis_url or "")
    proxy = TcpProxy(redis_target)
    await proxy.start()
    conn = await db(stack)
    try:
        await hold_ledger_inserts(conn)
        assert (await stack.deliver(shop, paid_order())).status_code == 200
        proxied = f"redis://127.0.0.1:{proxy.port}/{database}"
        doomed = start_worker(worker_env(stack, redis_url=proxied))
        await until(lambda: waiting_on_lock(conn), 60, "the worker to reach the ledger INSERT")
        proxy.freeze()  # whatever the worker does after its commit hangs on Redis
        await conn.execute(f"SELECT pg_advisory_unlock({LOCK_KEY})")

        async def committed() -> bool:
            return await stack.credit_count(shop) == 1

        await until(committed, 30, "the worker's commit")
        doomed.kill()
        doomed.wait()
        proxy.thaw()
    finally:
        await conn.close()
        await proxy.close()
    before = await state(stack, shop)
    assert before["entries"] == [("credit", 438, "pending")]  # its push never got queued

    recovered = await recover(stack, shop, shopify, baseline)
    print(f"\nkilled after the ledger commit: recovered in {recovered:.1f}s")
    await assert_as_fault_free(stack, shop, shopify, baseline)


async def test_killed_while_calling_shopify(
    stack: Stack, shopify: HeldShopify, baseline: dict[str, Any]
) -> None:
    shop = await stack.create_shop()
    await configure_shop(stack, shop, shopify)
    shopify.hold = True
    assert (await stack.deliver(shop, paid_order())).status_code == 200
    doomed = start_worker(worker_env(stack))
    try:
        await asyncio.wait_for(shopify.entered.wait(), 60)
        doomed.kill()
        doomed.wait()
    finally:
        shopify.release.set()  # Shopify applies the credit its caller will never hear about
    await asyncio.sleep(0.2)
    assert (await state(stack, shop))["entries"] == [("credit", 438, "in_flight")]

    recovered = await recover(stack, shop, shopify, baseline)
    print(f"\nkilled while calling Shopify: recovered in {recovered:.1f}s")
    await assert_as_fault_free(stack, shop, shopify, baseline)
