"""PostgreSQL restarted under load: every connection cut and new ones refused for a while, as
webhooks keep arriving and a worker keeps working. The API answers 503 (problem+json,
Retry-After), never a 2xx for an event it did not store, and recovers by itself; the worker
reconnects and finishes the work."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.config import Settings
from app.core.resources import Resources
from app.inbox.models import EventStatus, WebhookEvent
from app.main import create_app
from tests.payloads import new_order_id, paid_order
from tests.reliability.invariants import assert_accounted, assert_invariants
from tests.reliability.proxy import TcpProxy
from tests.support import Stack, until
from workers.sweeper import redrive
from workers.worker import build_worker

OUTAGE_S = 3.0


@dataclass
class Answer:
    sent: float
    at: float
    event_id: str
    order_id: int
    status: int
    content_type: str
    retry_after: str | None


@dataclass
class Load:
    answers: list[Answer] = field(default_factory=list)
    running: bool = True


@pytest.fixture
async def proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    url = make_url(settings.database_url or "")
    socket_dir = url.query.get("host")
    if url.host is None and isinstance(socket_dir, str):  # the embedded server's socket
        proxy = TcpProxy(f"{socket_dir}/.s.PGSQL.{url.port or 5432}")
    else:
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def proxied_stack(settings: Settings, proxy: TcpProxy) -> AsyncIterator[Stack]:
    """The app and its workers reach PostgreSQL through the proxy only."""
    url = (
        make_url(settings.database_url or "")
        .set(host="127.0.0.1", port=proxy.port)
        .difference_update_query(["host"])
    )
    settings = settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False), "db_pool_size": 5}
    )
    resources = Resources.open(settings)
    transport = httpx.ASGITransport(app=create_app(settings, resources), raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Stack(settings, resources, client)
    finally:
        await resources.close()


async def send_until_stopped(stack: Stack, load: Load, shop: object, pace_s: float) -> None:
    from tests.support import ShopHandle

    assert isinstance(shop, ShopHandle)
    while load.running:
        order_id, event_id = new_order_id(), str(uuid.uuid4())
        sent = time.monotonic()
        response = await stack.deliver(shop, paid_order(id=order_id), event_id=event_id)
        load.answers.append(
            Answer(
                sent,
                time.monotonic(),
                event_id,
                order_id,
                response.status_code,
                response.headers.get("content-type", ""),
                response.headers.get("retry-after"),
            )
        )
        await asyncio.sleep(pace_s)


async def stored_events(stack: Stack) -> dict[str, WebhookEvent]:
    async with stack.resources.sessionmaker() as session:
        return {e.event_key: e for e in await session.scalars(select(WebhookEvent))}


@pytest.mark.slow
async def test_the_api_and_workers_ride_out_a_database_restart(
    proxied_stack: Stack, proxy: TcpProxy
) -> None:
    stack = proxied_stack
    shop = await stack.create_shop()
    worker = build_worker(stack.settings, handle_signals=False, cron_jobs=[], max_jobs=5)
    working = asyncio.create_task(worker.async_run())
    load = Load()
    senders = [
        asyncio.create_task(send_until_stopped(stack, load, shop, pace_s=0.02)) for _ in range(3)
    ]

    def answered(status: int, after: float) -> int:
        return sum(1 for a in load.answers if a.status == status and a.sent > after)

    async def at_least(count: int, status: int, after: float) -> bool:
        return answered(status, after) >= count

    try:
        # Each phase lasts until the load has seen it, not for a fixed time.
        await until(lambda: at_least(20, 200, 0.0), 30, "deliveries accepted before the cut")
        await proxy.cut()
        down_at = time.monotonic()
        await until(lambda: at_least(10, 503, down_at), 30, "503s during the outage")
        outage = OUTAGE_S - (time.monotonic() - down_at)
        if outage > 0:  # the database stays away OUTAGE_S in all: the outage being tested
            await asyncio.sleep(outage)
        await proxy.restore()
        up_at = time.monotonic()
        await until(lambda: at_least(20, 200, up_at), 30, "deliveries accepted after the restart")
        load.running = False
        await asyncio.gather(*senders)

        # The worker finishes what was stored: retried jobs, and the sweeper for the rest.
        deadline = time.monotonic() + 60
        swept = 0
        while True:
            events = await stored_events(stack)
            waiting = [e for e in events.values() if e.status == EventStatus.received]
            if not waiting:
                break
            assert time.monotonic() < deadline, f"{len(waiting)} event(s) never processed"
            if time.monotonic() - up_at > 15 and not swept:
                counts = await redrive(stack.resources, datetime.now(UTC) + timedelta(minutes=1))
                swept = counts["events"]
            await asyncio.sleep(0.5)
        done_at = time.monotonic()
    finally:
        load.running = False
        for task in senders:
            task.cancel()
        working.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await working
        await worker.close()

    answers = load.answers
    during = [a for a in answers if down_at < a.sent and a.at < up_at]
    ok = [a for a in answers if 200 <= a.status < 300]
    other = [a for a in answers if not 200 <= a.status < 300]
    first_ok_after = min(a.at for a in ok if a.at > up_at)
    events = await stored_events(stack)
    credits = await stack.credit_count(shop)
    print(
        f"\npostgres cut for {OUTAGE_S:.0f}s: {len(answers)} deliveries, {len(ok)} 2xx, "
        f"{len(other)} 503 ({len(during)} answered during the outage), {len(events)} stored, "
        f"{credits} credited, {swept} re-driven by the sweeper; API back "
        f"{first_ok_after - up_at:.2f}s after the database, all work done "
        f"{done_at - up_at:.2f}s after"
    )
    assert {a.status for a in other} <= {503}, {a.status for a in other}
    for answer in other:
        assert answer.content_type.startswith("application/problem+json")
        assert answer.retry_after is not None
    assert during and all(a.status == 503 for a in during)
    assert {a.event_id for a in ok} <= set(events), "a 2xx for an event that is not stored"
    # Recovered by itself: everything after the first answer that follows the restart is fine.
    assert all(200 <= a.status < 300 for a in answers if a.at > first_ok_after)
    assert first_ok_after - up_at < 5
    assert all(e.status == EventStatus.processed for e in events.values())
    stored_orders = [a.order_id for a in answers if a.event_id in events]
    assert credits == len(stored_orders)
    await assert_accounted(stack.resources.sessionmaker, shop.id, stored_orders)
    await assert_invariants(stack.resources.sessionmaker)
