"""Customer notices and merchant alerts through a real worker to a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.core.broker import Job
from app.core.resources import create_http_client
from app.core.uow import unit_of_work
from app.notifications import service, tasks
from app.notifications.models import OutboxStatus
from app.shops.models import Shop
from tests.notifications.helpers import (
    configure,
    credited_payload,
    db_now,
    enqueue_notice,
    make_due,
    outbox,
    set_message,
)
from tests.notifications.receiver import Receiver, verify_signature
from tests.support import Stack
from workers.sweeper import redrive


async def test_a_notice_is_signed_and_sent_once_however_often_it_is_enqueued_and_run(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    secret = await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    await enqueue_notice(stack, shop, "credit:1")
    await enqueue_notice(stack, shop, "credit:1")  # the ledger job ran twice
    await stack.run_worker()

    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts, message.kind) == ("sent", 1, "customer_notice")
    assert message.sent_at is not None and message.last_error is None

    # The send job rung again (a sweeper, a duplicate broker) and run directly: nothing more.
    job = Job(service.SEND_JOB, (message.id,), service.outbox_job_id(message.id))
    await stack.resources.broker.enqueue([job])
    await stack.run_worker()
    assert await tasks.send_outbox_message({"resources": stack.resources}, message.id) is None

    [received] = receiver.requests
    assert received.path == "/notices"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["webhook-id"] == f"msg_{message.id}"
    verify_signature(secret, received)
    body = received.json
    assert body["type"] == "cashback.credited"
    assert body["data"] == credited_payload()
    assert datetime.fromisoformat(body["timestamp"]) == message.created_at


async def test_concurrent_send_jobs_deliver_once(stack: Stack, receiver: Receiver) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    await enqueue_notice(stack, shop, ring=False)
    [message] = await outbox(stack, shop)
    ctx = {"resources": stack.resources}
    results = await asyncio.gather(*(tasks.send_outbox_message(ctx, message.id) for _ in range(5)))
    assert sorted(results, key=str) == [None, None, None, None, "sent"]
    assert len(receiver.requests) == 1


async def test_a_lost_broker_is_rung_again_by_the_sweeper(stack: Stack, receiver: Receiver) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    await enqueue_notice(stack, shop, ring=False)  # as if Redis were down
    await stack.run_worker()
    assert receiver.requests == []

    counts = await redrive(stack.resources, datetime.now(UTC))
    assert counts["other"] == 1
    await stack.run_worker()
    assert len(receiver.requests) == 1
    assert [m.status for m in await outbox(stack, shop)] == ["sent"]
    assert (await redrive(stack.resources, datetime.now(UTC)))["other"] == 0


async def test_a_server_error_is_retried_with_backoff_until_sent(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    secret = await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    receiver.fail_next(2, status=500)
    await enqueue_notice(stack, shop)

    for attempt, wait in ((1, timedelta(minutes=1)), (2, timedelta(minutes=2))):
        await stack.run_worker()
        [message] = await outbox(stack, shop)
        assert (message.status, message.attempts) == ("pending", attempt)
        assert message.last_error == "HTTP 500: answered 500"
        until_next = message.next_attempt_at - await db_now(stack)
        assert wait - timedelta(seconds=5) < until_next <= wait
        # Not due yet: the sweeper leaves it alone.
        assert (await redrive(stack.resources, datetime.now(UTC)))["other"] == 0
        await make_due(stack, message.id)
        assert (await redrive(stack.resources, datetime.now(UTC)))["other"] == 1

    await stack.run_worker()
    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, None)
    assert len(receiver.requests) == 3
    assert {r.headers["webhook-id"] for r in receiver.requests} == {f"msg_{message.id}"}
    assert len({r.body for r in receiver.requests}) == 1
    for received in receiver.requests:
        verify_signature(secret, received)


@pytest.mark.parametrize("status", [408, 429, 503])
async def test_throttling_and_server_errors_are_retried(
    stack: Stack, receiver: Receiver, status: int
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    receiver.fail_next(1, status=status)
    await enqueue_notice(stack, shop)
    await stack.run_worker()
    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.last_error is not None and message.last_error.startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [400, 404, 410])
async def test_a_client_error_fails_at_once_and_is_never_retried(
    stack: Stack, receiver: Receiver, status: int
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    receiver.status = status
    await enqueue_notice(stack, shop)
    await stack.run_worker()

    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.last_error == f"HTTP {status}: answered {status}"
    await make_due(stack, message.id)  # even with the clock moved on
    assert (await redrive(stack.resources, datetime.now(UTC)))["other"] == 0
    assert await tasks.send_outbox_message({"resources": stack.resources}, message.id) is None
    assert len(receiver.requests) == 1


async def test_the_last_attempt_fails_the_message(stack: Stack, receiver: Receiver) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    receiver.status = 500
    await enqueue_notice(stack, shop)
    [message] = await outbox(stack, shop)
    await set_message(stack, message.id, attempts=service.MAX_ATTEMPTS - 1)
    await stack.run_worker()

    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts) == ("failed", service.MAX_ATTEMPTS)
    assert message.last_error == "HTTP 500: answered 500"


async def test_a_timeout_is_retried(stack: Stack, receiver: Receiver) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    receiver.delay_s = 1.0
    await enqueue_notice(stack, shop, ring=False)
    [message] = await outbox(stack, shop)
    impatient = dataclasses.replace(stack.resources, http=create_http_client(0.2))
    try:
        status = await tasks.send_outbox_message({"resources": impatient}, message.id)
    finally:
        await impatient.http.aclose()

    assert status == "pending"
    [message] = await outbox(stack, shop)
    assert message.attempts == 1
    assert message.last_error is not None and message.last_error.startswith("ReadTimeout")


async def test_an_unreachable_endpoint_is_retried(stack: Stack) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url="http://127.0.0.1:1/notices")
    await enqueue_notice(stack, shop)
    await stack.run_worker()
    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.last_error is not None and message.last_error.startswith("ConnectError")


async def test_alerts_go_to_the_alert_webhook_even_without_customer_notices(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    secret = await configure(
        stack, shop, alert_webhook_url=receiver.url("/alerts"), notify_customers=False
    )
    res = stack.resources
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        db_shop = await session.get_one(Shop, shop.id)
        await service.enqueue_customer_notice(
            session, db_shop, event_key="credit:1", event_type="cashback.credited", payload={}
        )
        await service.enqueue_alert(
            session,
            db_shop,
            event_key="order.failed:42",
            event_type="order.failed",
            payload={"order_id": "42", "error": "boom"},
        )
    await stack.run_worker()

    [message] = await outbox(stack, shop)
    assert (message.kind, message.status) == ("alert", "sent")
    [received] = receiver.requests
    assert received.path == "/alerts"
    assert received.json["type"] == "order.failed"
    verify_signature(secret, received)


async def test_nothing_is_stored_for_a_shop_that_takes_no_notices(
    stack: Stack, receiver: Receiver
) -> None:
    no_url = await stack.create_shop()
    await enqueue_notice(stack, no_url)
    opted_out = await stack.create_shop()
    await configure(
        stack, opted_out, notification_webhook_url=receiver.url("/n"), notify_customers=False
    )
    await enqueue_notice(stack, opted_out)
    uninstalled = await stack.create_shop()
    await configure(stack, uninstalled, notification_webhook_url=receiver.url("/n"))
    async with stack.resources.sessionmaker() as session:
        await session.execute(
            update(Shop).where(Shop.id == uninstalled.id).values(uninstalled_at=datetime.now(UTC))
        )
        await session.commit()
    await enqueue_notice(stack, uninstalled)

    for shop in (no_url, opted_out, uninstalled):
        assert await outbox(stack, shop) == []


async def test_a_notice_waiting_when_the_shop_opts_out_is_not_sent(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    receiver.fail_next(1)
    await enqueue_notice(stack, shop)
    await stack.run_worker()
    await configure(stack, shop, notify_customers=False)
    [message] = await outbox(stack, shop)
    await make_due(stack, message.id)
    await redrive(stack.resources, datetime.now(UTC))
    await stack.run_worker()

    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts) == (OutboxStatus.failed, 1)
    assert message.last_error == "the shop no longer takes these messages"
    assert len(receiver.requests) == 1


async def test_a_claimed_message_is_left_alone_until_its_lease_ends(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    await enqueue_notice(stack, shop, ring=False)
    [message] = await outbox(stack, shop)
    res = stack.resources
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        claim = await service.claim(session, message.id)  # then the worker dies mid-send
    assert claim is not None and claim.attempt == 1

    assert (await redrive(res, datetime.now(UTC)))["other"] == 0
    assert await tasks.send_outbox_message({"resources": res}, message.id) is None
    assert receiver.requests == []

    await make_due(stack, message.id)  # the lease is over
    assert (await redrive(res, datetime.now(UTC)))["other"] == 1
    await stack.run_worker()
    [message] = await outbox(stack, shop)
    assert (message.status, message.attempts) == ("sent", 2)
    [received] = receiver.requests
    assert received.headers["webhook-id"] == claim.webhook_id


async def test_a_rolled_back_transaction_leaves_no_message(
    stack: Stack, receiver: Receiver
) -> None:
    shop = await stack.create_shop()
    await configure(stack, shop, notification_webhook_url=receiver.url("/notices"))
    res = stack.resources
    with pytest.raises(RuntimeError):
        async with unit_of_work(res.sessionmaker, res.broker) as session:
            await service.enqueue_customer_notice(
                session,
                await session.get_one(Shop, shop.id),
                event_key="credit:1",
                event_type="cashback.credited",
                payload=credited_payload(),
            )
            raise RuntimeError("the credit failed")
    # Nothing was rung either: a job for a message that was never stored would find nothing
    # to send, so an empty receiver alone could not tell.
    assert await res.broker.redis.zcard(stack.settings.queue_name) == 0
    await stack.run_worker()
    assert await outbox(stack, shop) == []
    assert receiver.requests == []
