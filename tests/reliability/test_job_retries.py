"""arq's own retries, through a real worker: a failing try is retried with backoff up to the
last try, and the last failure is stored (the order failed, the merchant alerted), never lost."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.core import jobs
from app.core.jobs import MAX_TRIES
from app.inbox.models import WebhookEvent
from app.notifications.models import OutboxMessage
from tests.payloads import new_order_id, paid_order
from tests.reliability.faults import failing_inserts, slowed
from tests.reliability.invariants import assert_invariants
from tests.support import ShopHandle, Stack


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Backoff as the worker computes it, recorded, and waited a hundredth as long."""
    asked: list[float] = []
    real = jobs.backoff_seconds

    def recorded(job_try: int) -> float:
        asked.append(real(job_try))
        return real(job_try) / 100

    monkeypatch.setattr(jobs, "backoff_seconds", recorded)
    return asked


async def alerting_shop(stack: Stack) -> ShopHandle:
    shop = await stack.create_shop()
    response = await stack.client.patch(
        "/v1/shop/settings",
        headers=shop.auth,
        json={"alert_webhook_url": "https://alerts.example.com/cashback"},
    )
    assert response.status_code == 200, response.text
    return shop


async def test_a_try_that_fails_is_retried_with_backoff_until_it_succeeds(
    stack: Stack, quick_backoff: list[float]
) -> None:
    shop = await alerting_shop(stack)
    order_id = new_order_id()
    url = stack.settings.database_url or ""
    # The batch fails, its event fails again alone (a savepoint), then the event's own job
    # fails twice and succeeds on its third try.
    await failing_inserts(url, "ledger_entries", times=4)
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.run_worker()

    assert await slowed(url, "ledger_entries") == 5  # four failed INSERTs, then the credit
    assert quick_backoff == [2.0, 4.0]  # 2^try seconds after each failed try of the job
    order = await stack.order(shop, order_id)
    assert (order["status"], order["credited_amount"]) == ("processed", "4.38")
    async with stack.resources.sessionmaker() as session:
        event = await session.scalar(select(WebhookEvent))
        alerts = list(await session.scalars(select(OutboxMessage)))
    assert event is not None and event.status == "processed"
    assert alerts == []
    await assert_invariants(stack.resources.sessionmaker)


async def test_the_last_failed_try_stores_the_failure_and_alerts_the_merchant(
    stack: Stack, quick_backoff: list[float]
) -> None:
    shop = await alerting_shop(stack)
    order_id = new_order_id()
    url = stack.settings.database_url or ""
    await failing_inserts(url, "ledger_entries", times=999)
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.run_worker()

    # The batch's try and its savepoint's, then every try of the event's own job; no backoff
    # after the last.
    assert await slowed(url, "ledger_entries") == 2 + MAX_TRIES
    assert quick_backoff == [2.0, 4.0, 8.0, 16.0]
    async with stack.resources.sessionmaker() as session:
        event = await session.scalar(select(WebhookEvent))
        alerts = list(await session.scalars(select(OutboxMessage)))
    assert event is not None and event.status == "failed"
    assert "injected failure" in (event.error or "")
    # Every try rolled back, so no order was ever stored: the merchant hears of the delivery.
    assert [(a.kind, a.event_type) for a in alerts] == [("alert", "webhook.failed")]
    assert alerts[0].payload["event"]["order_external_id"] == str(order_id)
    assert "injected failure" in alerts[0].payload["error"]
    assert await stack.credit_count(shop) == 0
    await assert_invariants(stack.resources.sessionmaker)
