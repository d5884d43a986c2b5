"""A job that overruns its timeout leaves nothing half-done, and the sweeper finishes it; one
that never finishes is given up after a bounded number of re-drives, with the merchant told."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.core import jobs as job_runner
from app.core.jobs import JOB_TIMEOUT_S
from app.inbox.models import WebhookEvent
from app.ledger.models import LedgerEntry
from app.notifications.models import OutboxMessage
from app.orders.models import Order
from tests.payloads import new_order_id, paid_order
from tests.reliability.faults import slow_inserts, slowed
from tests.reliability.invariants import assert_accounted, assert_invariants
from tests.support import Stack
from workers import registry, sweeper
from workers.sweeper import redrive

TIMEOUT_S = 2
SLOW_S = 5  # the credit's INSERT, when slowed: past the job's timeout


@pytest.fixture
def short_job_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(job_runner, "JOB_TIMEOUT_S", TIMEOUT_S)


async def count(stack: Stack, model: type, shop_id: int) -> int:
    async with stack.resources.sessionmaker() as session:
        stmt = select(func.count()).select_from(model).where(model.shop_id == shop_id)  # type: ignore[attr-defined]
        return int((await session.execute(stmt)).scalar_one())


async def sweep_now(stack: Stack) -> dict[str, int]:
    """The sweeper's cron, with every stored item already past its window."""
    return await redrive(stack.resources, datetime.now(UTC) + timedelta(minutes=1))


@pytest.mark.usefixtures("short_job_timeout")
async def test_an_overrunning_job_rolls_back_and_the_sweeper_finishes_it(stack: Stack) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    # The credit's INSERT takes longer than the job may run, once.
    await slow_inserts(stack.settings.database_url or "", "ledger_entries", seconds=SLOW_S, times=1)
    assert (await stack.deliver(shop, paid_order(id=order_id))).status_code == 200
    await stack.run_worker()

    assert await slowed(stack.settings.database_url or "", "ledger_entries") == 1
    # Nothing of the try is left: no order, no credit, no history; the event waits.
    for model in (Order, LedgerEntry, AuditEvent):
        assert await count(stack, model, shop.id) == 0, model.__name__
    async with stack.resources.sessionmaker() as session:
        event = (await session.execute(select(WebhookEvent))).scalar_one()
    assert event.status == "received"

    started = time.monotonic()
    swept = await sweep_now(stack)
    await stack.run_worker()
    recovered = time.monotonic() - started
    print(f"\njob timeout: re-driven {swept['events']} event(s), recovered in {recovered:.2f}s")
    assert swept["events"] == 1
    assert await stack.credit_count(shop) == 1
    await assert_accounted(stack.resources.sessionmaker, shop.id, [order_id])
    await assert_invariants(stack.resources.sessionmaker)


@pytest.mark.usefixtures("short_job_timeout")
async def test_a_job_that_never_finishes_is_given_up_and_the_merchant_alerted(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweeper, "MAX_REDRIVES", 3)
    shop = await stack.create_shop()
    response = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth,
        json={"alert_webhook_url": "https://alerts.example.com/cashback"},
    )
    assert response.status_code == 200, response.text
    order_id = new_order_id()
    url = stack.settings.database_url or ""
    await slow_inserts(url, "ledger_entries", seconds=SLOW_S, times=999)
    assert (await stack.deliver(shop, paid_order(id=order_id))).status_code == 200
    await stack.run_worker()

    rounds = 0
    while (swept := await sweep_now(stack))["given_up"] == 0:
        rounds += 1
        assert rounds <= 3, "the sweeper keeps re-driving an event that never finishes"
        assert swept["events"] == 1
        await stack.run_worker()
    print(f"\nnever-finishing job: given up after {rounds} re-drive(s)")
    assert rounds == 3
    assert (await sweep_now(stack))["events"] == 0  # not rung for again

    async with stack.resources.sessionmaker() as session:
        event = (await session.execute(select(WebhookEvent))).scalar_one()
        alerts = list(await session.scalars(select(OutboxMessage)))
    assert event.status == "failed" and "gave up after 3 attempts" in (event.error or "")
    assert [(a.kind, a.event_type) for a in alerts] == [("alert", "webhook.failed")]
    assert alerts[0].payload["event"]["order_external_id"] == str(order_id)
    assert await stack.credit_count(shop) == 0
    await assert_invariants(stack.resources.sessionmaker)


async def test_the_sweeper_frees_a_job_only_a_dead_worker_can_hold(stack: Stack) -> None:
    """arq's in-progress mark of a job whose worker died lasts an hour; the sweeper removes it
    once no live worker can still be running the job, and leaves younger marks alone."""
    shop = await stack.create_shop()
    for _ in range(2):
        assert (await stack.deliver(shop, paid_order(id=new_order_id()))).status_code == 200
    async with stack.resources.sessionmaker() as session:
        dead, alive = sorted(await session.scalars(select(WebhookEvent.id)))
    redis = stack.resources.broker.redis
    queue = stack.settings.queue_name
    mark_ms = int(registry.in_progress_mark_s() * 1000)

    def key(event_id: int) -> str:
        return f"arq:in-progress:{queue}:event:{event_id}"

    oldest_live_s = JOB_TIMEOUT_S + sweeper.ORPHAN_GRACE_S
    await redis.set(key(dead), b"1", px=mark_ms - int((oldest_live_s + 5) * 1000))
    await redis.set(key(alive), b"1", px=mark_ms - int((oldest_live_s - 5) * 1000))
    await sweep_now(stack)
    assert not await redis.exists(key(dead))
    assert await redis.exists(key(alive))

    await redis.delete(key(alive))
    await stack.run_worker()
    assert await stack.credit_count(shop) == 2
    await assert_invariants(stack.resources.sessionmaker)


@pytest.mark.usefixtures("short_job_timeout")
async def test_a_scheduled_award_that_never_finishes_is_given_up_and_the_merchant_alerted(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Awards were re-driven without end: now they are capped as events are."""
    monkeypatch.setattr(sweeper, "MAX_REDRIVES", 3)
    shop = await stack.create_shop()
    response = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth,
        json={"alert_webhook_url": "https://alerts.example.com/cashback", "award_delay_days": 1},
    )
    assert response.status_code == 200, response.text
    order_id = new_order_id()
    assert (await stack.deliver(shop, paid_order(id=order_id))).status_code == 200
    await stack.run_worker()
    async with stack.resources.sessionmaker() as session:
        order = (await session.execute(select(Order))).scalar_one()
        assert order.status == "scheduled"
        order.award_at = datetime.now(UTC) - timedelta(minutes=1)  # due now
        await session.commit()
    await slow_inserts(
        stack.settings.database_url or "", "ledger_entries", seconds=SLOW_S, times=999
    )

    rounds = 0
    while (swept := await sweep_now(stack))["given_up"] == 0:
        rounds += 1
        assert rounds <= 3, "the sweeper keeps re-driving an award that never finishes"
        assert swept["awards"] == 1
        await stack.run_worker()
    assert rounds == 3
    assert (await sweep_now(stack))["awards"] == 0  # failed: not due any more

    async with stack.resources.sessionmaker() as session:
        order = (await session.execute(select(Order))).scalar_one()
        alerts = list(await session.scalars(select(OutboxMessage)))
    assert order.status == "failed" and "gave up after 3 attempts" in (order.last_error or "")
    assert [(a.kind, a.event_type) for a in alerts] == [("alert", "order.failed")]
    assert await stack.credit_count(shop) == 0
    await assert_invariants(stack.resources.sessionmaker)
