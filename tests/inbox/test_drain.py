"""The batch drain: many stored events handled per transaction, with the guarantees of one."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine

from app.audit.models import AuditEvent
from app.credit_sync.models import CreditSync
from app.inbox import service as webhook_service
from app.inbox.drain import drain_batch, order_lock_name
from app.inbox.models import EventStatus, WebhookEvent
from app.ledger.models import EntryKind, LedgerEntry
from app.metrics.models import OrderStatsHourly
from app.orders.models import Order, OrderLine
from tests.payloads import new_order_id, paid_order, refund
from tests.program.test_program_api import put_program
from tests.support import ShopHandle, Stack


async def events_by_status(stack: Stack, shop: ShopHandle) -> dict[str, int]:
    async with stack.resources.sessionmaker() as session:
        rows = await session.execute(
            select(WebhookEvent.status, func.count())
            .where(WebhookEvent.shop_id == shop.id)
            .group_by(WebhookEvent.status)
        )
        return {str(status): int(n) for status, n in rows.all()}


async def count(stack: Stack, model: Any, *where: Any) -> int:
    async with stack.resources.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_one_ring_per_bucket_drains_every_event_of_a_flood(stack: Stack) -> None:
    shop = await stack.create_shop()
    ids = [new_order_id() for _ in range(30)]
    for order_id in ids:
        unpaid = paid_order(id=order_id, financial_status="pending")
        assert (await stack.deliver(shop, unpaid, topic="orders/create")).status_code == 200
        assert (await stack.deliver(shop, paid_order(id=order_id))).status_code == 200
    redis = stack.resources.broker.redis
    queued = [raw.decode() for raw in await redis.zrange(stack.settings.queue_name, 0, -1)]
    assert 1 <= len(queued) < 60  # drain jobs per 100 ms, not one job per event
    assert all(":drain:" in job for job in queued)

    await stack.run_worker()

    # Drain jobs running side by side may split the flood; an unpaid create that meets its
    # paid snapshot in one batch is replaced by it, and every other event is processed.
    handled = await events_by_status(stack, shop)
    assert set(handled) <= {"processed", "ignored"} and sum(handled.values()) == 60
    async with stack.resources.sessionmaker() as session:
        replaced = (
            await session.execute(
                select(WebhookEvent.topic, WebhookEvent.error).where(
                    WebhookEvent.shop_id == shop.id, WebhookEvent.status == EventStatus.ignored
                )
            )
        ).all()
    assert all(t == "orders/create" and (e or "").startswith("replaced by") for t, e in replaced)
    assert await stack.credit_count(shop) == 30
    for order_id in ids:
        history = (await stack.order(shop, order_id))["history"]
        assert history[0]["to_status"] == "received" and history[-1]["to_status"] == "processed"
    assert await count(stack, CreditSync, CreditSync.shop_id == shop.id) == 30


async def test_create_and_paid_of_one_order_in_one_batch_credit_once_with_one_set_of_lines(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    order_id = new_order_id()
    unpaid = paid_order(id=order_id, financial_status="pending")
    await stack.deliver(shop, unpaid, topic="orders/create")
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.deliver(shop, paid_order(id=order_id), topic="orders/updated")

    assert await drain_batch(stack.resources, 100) == 3

    # The unpaid create is replaced; paid snapshots never are.
    assert await events_by_status(stack, shop) == {"ignored": 1, "processed": 2}
    async with stack.resources.sessionmaker() as session:
        order = (await session.execute(select(Order).where(Order.shop_id == shop.id))).scalar_one()
        assert order.status == "processed"
        lines = await session.scalar(select(func.count()).where(OrderLine.order_id == order.id))
        assert lines == len(paid_order()["line_items"])
        credits = await session.scalar(
            select(func.count()).where(
                LedgerEntry.order_id == order.id, LedgerEntry.kind == EntryKind.credit
            )
        )
        assert credits == 1
        rolled = (
            await session.execute(
                select(
                    func.sum(OrderStatsHourly.orders),
                    func.sum(OrderStatsHourly.processed),
                    func.sum(OrderStatsHourly.cashback_issued),
                ).where(OrderStatsHourly.shop_id == shop.id)
            )
        ).one()
        assert tuple(rolled) == (1, 1, 438)


async def test_an_event_that_fails_in_a_batch_goes_to_its_own_job_and_the_rest_are_credited(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    good = [new_order_id() for _ in range(3)]
    bad = new_order_id()
    await stack.deliver(shop, paid_order(id=good[0]))
    # Parses, but its name does not fit the column: the database refuses it at the write.
    await stack.deliver(shop, paid_order(id=bad, name="#" + "9" * 400))
    for order_id in good[1:]:
        await stack.deliver(shop, paid_order(id=order_id))

    assert await drain_batch(stack.resources, 100) == 4

    assert await events_by_status(stack, shop) == {"processed": 3, "received": 1}
    assert await stack.credit_count(shop) == 3
    async with stack.resources.sessionmaker() as session:
        failed = (
            await session.execute(
                select(WebhookEvent).where(
                    WebhookEvent.shop_id == shop.id, WebhookEvent.status == EventStatus.received
                )
            )
        ).scalar_one()
        assert failed.attempts == 1 and failed.error and "value too long" in failed.error
        # Nothing of the failed event's work survived its savepoint: no order row, no audit.
        assert (
            await session.scalar(
                select(func.count()).where(Order.shop_id == shop.id, Order.external_id == str(bad))
            )
            == 0
        )
        audited = await session.scalar(
            select(func.count()).where(
                AuditEvent.shop_id == shop.id, AuditEvent.action == "order.received"
            )
        )
        assert audited == 3
        rolled = await session.scalar(
            select(func.sum(OrderStatsHourly.orders)).where(OrderStatsHourly.shop_id == shop.id)
        )
        assert rolled == 3
    # Its own job is queued (with retries); a later batch does not claim it again.
    redis = stack.resources.broker.redis
    queued = [raw.decode() for raw in await redis.zrange(stack.settings.queue_name, 0, -1)]
    assert f"{stack.settings.queue_name}:{webhook_service.event_job_id(failed.id)}" in queued
    assert await drain_batch(stack.resources, 100) == 0


async def test_an_invalid_payload_in_a_batch_is_failed_alone_without_a_fallback(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    await stack.deliver(shop, paid_order(id=new_order_id()))
    await stack.deliver(shop, paid_order(id=new_order_id(), currency="EUR"))

    assert await drain_batch(stack.resources, 100) == 2

    assert await events_by_status(stack, shop) == {"processed": 1, "failed": 1}
    assert await stack.credit_count(shop) == 1
    async with stack.resources.sessionmaker() as session:
        events = (
            await session.execute(
                select(WebhookEvent.status, WebhookEvent.attempts, WebhookEvent.handled_at)
                .where(WebhookEvent.shop_id == shop.id)
                .order_by(WebhookEvent.id)
            )
        ).all()
    assert [(status, attempts) for status, attempts, _ in events] == [
        ("processed", 1),
        ("failed", 1),
    ]
    assert all(handled_at is not None for _, _, handled_at in events)


async def test_a_newer_snapshot_in_the_batch_replaces_an_older_unpaid_one_never_a_paid_one(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    created, paid_then_updated = new_order_id(), new_order_id()
    older = "2026-11-20T10:00:00-05:00"  # the sample's own snapshot is from 10:15:09
    await stack.deliver(
        shop,
        paid_order(id=created, financial_status="pending", updated_at=older),
        topic="orders/create",
    )
    await stack.deliver(shop, paid_order(id=created))
    await stack.deliver(shop, paid_order(id=paid_then_updated, updated_at=older))
    await stack.deliver(shop, paid_order(id=paid_then_updated), topic="orders/updated")
    # An unpaid snapshot naming another customer than the later one is handled too.
    other_customer, customer = new_order_id(), paid_order()["customer"]
    unpaid = paid_order(id=other_customer, financial_status="pending", updated_at=older)
    unpaid["customer"] = customer | {"id": 7_000_000_001, "email": "other@example.com"}
    await stack.deliver(shop, unpaid, topic="orders/create")
    await stack.deliver(shop, paid_order(id=other_customer))

    assert await drain_batch(stack.resources, 100) == 6

    assert await events_by_status(stack, shop) == {"ignored": 1, "processed": 5}
    async with stack.resources.sessionmaker() as session:
        replaced = (
            await session.execute(
                select(WebhookEvent).where(
                    WebhookEvent.shop_id == shop.id, WebhookEvent.status == EventStatus.ignored
                )
            )
        ).scalar_one()
        assert (replaced.topic, replaced.attempts) == ("orders/create", 0)
        assert replaced.handled_at is not None
        assert replaced.error and replaced.error.startswith("replaced by a later snapshot")
    order = await stack.order(shop, created)
    assert [(h["from_status"], h["to_status"]) for h in order["history"]] == [
        (None, "received"),
        ("received", "processed"),
    ]
    assert (order["credited_amount"], len(order["lines"])) == ("4.38", 3)
    assert (await stack.order(shop, paid_then_updated))["credited_amount"] == "4.38"
    assert (await stack.order(shop, other_customer))["credited_amount"] == "4.38"
    assert await stack.credit_count(shop) == 3


async def test_what_a_batch_reads_ahead_is_what_each_event_would_have_read_in_turn(
    stack: Stack,
) -> None:
    """Prefetched orders, products, customers and waiting refunds follow the batch's own
    writes: a refund stored before its order, a product updated before an order of it, and a
    customer whose details change from one order to the next."""
    shop = await stack.create_shop()
    await put_program(
        stack,
        shop,
        rules=[{"name": "Shoes 10%", "field": "product_type", "value": "Shoes", "rate": "10"}],
    )
    refunded, first, second = 820982911946154508, new_order_id(), new_order_id()
    await stack.deliver(shop, refund(), topic="refunds/create")  # for the sample order
    await stack.deliver(shop, paid_order())
    product = {"id": 632910392, "title": "Shoe", "product_type": "Shoes", "tags": ""}
    await stack.deliver(shop, product, topic="products/update")
    customer = paid_order()["customer"]
    await stack.deliver(shop, paid_order(id=first))
    await stack.deliver(shop, paid_order(id=second, customer=customer | {"first_name": "Mia"}))

    assert await drain_batch(stack.resources, 100) == 5

    assert await events_by_status(stack, shop) == {"processed": 5}
    sample = await stack.order(shop, refunded)
    shoes = {line["external_id"]: line for line in sample["lines"]}["466157049"]
    assert (shoes["rate"], shoes["rate_source"]) == ("10", "rule:Shoes 10%")
    assert (sample["status"], sample["reversed_amount"]) == ("partially_reversed", "3.60")
    ids = {(await stack.order(shop, o))["customer_id"] for o in (first, second, refunded)}
    assert len(ids) == 1  # one customer, found or created once
    (customer_id,) = ids
    found = await stack.client.get(f"/v1/customers/{customer_id}", headers=shop.auth)
    assert found.json()["first_name"] == "Mia"  # the batch's last details of the customer


async def test_an_order_another_batch_holds_is_left_for_a_later_batch_not_waited_for(
    stack: Stack,
) -> None:
    shop = await stack.create_shop()
    busy, free = new_order_id(), new_order_id()
    await stack.deliver(shop, paid_order(id=busy))
    await stack.deliver(shop, refund(order_id=busy), topic="refunds/create")
    await stack.deliver(shop, paid_order(id=free))
    lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:name, 0))")
    async with stack.resources.sessionmaker() as other_batch:
        await other_batch.execute(lock, {"name": order_lock_name(shop.id, busy)})

        # Answers at once (no wait for the other transaction); the busy order's two events
        # stay unhandled, the free order is credited.
        assert await asyncio.wait_for(drain_batch(stack.resources, 100), 5) == 3
        assert await events_by_status(stack, shop) == {"processed": 1, "received": 2}
        assert await stack.credit_count(shop) == 1
        await other_batch.rollback()

    assert await drain_batch(stack.resources, 100) == 2
    assert await events_by_status(stack, shop) == {"processed": 3}
    order = await stack.order(shop, busy)
    assert (order["status"], order["reversed_amount"]) == ("partially_reversed", "1.80")


async def test_a_create_waits_for_its_paid_so_the_order_is_evaluated_once(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With `create_settle_s` on (as in production), a young `orders/create` is left for a
    later batch; the paid order is credited at once from its own snapshot, and the create,
    handled once settled, is stale and changes nothing. A create with no paid behind it is
    handled once settled too, and its order waits for payment."""
    monkeypatch.setattr(stack.resources.settings, "create_settle_s", 30.0)
    shop = await stack.create_shop()
    paid_soon, never_paid = new_order_id(), new_order_id()
    older = "2026-11-20T10:00:00-05:00"  # the sample's own snapshot is from 10:15:09
    for order_id in (paid_soon, never_paid):
        unpaid = paid_order(id=order_id, financial_status="pending", updated_at=older)
        assert (await stack.deliver(shop, unpaid, topic="orders/create")).status_code == 200
    await stack.deliver(shop, paid_order(id=paid_soon))

    assert await drain_batch(stack.resources, 100) == 1  # the paid one: the creates settle
    assert await events_by_status(stack, shop) == {"received": 2, "processed": 1}
    order = await stack.order(shop, paid_soon)
    assert [(h["from_status"], h["to_status"]) for h in order["history"]] == [
        (None, "received"),
        ("received", "processed"),
    ]
    assert await count(stack, Order, Order.external_id == str(never_paid)) == 0

    async with stack.resources.sessionmaker() as session:  # 31 seconds later
        await session.execute(
            text(
                "UPDATE webhook_events SET received_at = received_at - interval '31 seconds',"
                " ready_at = ready_at - interval '31 seconds'"
            )
        )
        await session.commit()
    assert await drain_batch(stack.resources, 100) == 2
    assert await events_by_status(stack, shop) == {"processed": 3}
    again = await stack.order(shop, paid_soon)
    assert (again["history"], again["credited_amount"]) == (order["history"], "4.38")
    assert (await stack.order(shop, never_paid))["status"] == "awaiting_payment"
    assert await stack.credit_count(shop) == 1


async def test_a_batch_writes_its_credits_in_one_statement_and_reads_them_back(
    stack: Stack,
) -> None:
    """A batch's credits and order lines go in together (the credits with ids drawn ahead);
    a refund later in the same batch finds its order's credit and lines (what is pending is
    written before any read) and every sync row names a credit that exists."""
    shop = await stack.create_shop()
    refunded = 820982911946154508  # the sample refund's order
    others = [new_order_id() for _ in range(3)]
    for order_id in (refunded, *others):
        await stack.deliver(shop, paid_order(id=order_id))
    await stack.deliver(shop, refund(), topic="refunds/create")
    inserts: list[str] = []
    line_inserts: list[str] = []

    def seen(*args: Any) -> None:
        if args[2].lstrip().startswith("INSERT INTO ledger_entries"):
            inserts.append(args[2])
        elif args[2].lstrip().startswith("INSERT INTO order_lines"):
            line_inserts.append(args[2])

    sa_event.listen(Engine, "before_cursor_execute", seen)
    try:
        assert await drain_batch(stack.resources, 100) == 5
    finally:
        sa_event.remove(Engine, "before_cursor_execute", seen)

    assert await events_by_status(stack, shop) == {"processed": 5}
    # Not one INSERT per entry (5): the credits pending when the refund reads its credit go in
    # at once, then the reversal, then the credits of the orders handled after it.
    assert len(inserts) <= 3
    assert len(line_inserts) <= 2  # the same for the orders' lines (not one per order: 4)
    sample = await stack.order(shop, refunded)
    assert (sample["status"], sample["credited_amount"], sample["reversed_amount"]) == (
        "partially_reversed",
        "4.38",
        "1.80",
    )
    assert await stack.credit_count(shop) == 5
    assert await count(stack, CreditSync, CreditSync.shop_id == shop.id) == 5


async def test_a_credit_found_written_fails_the_batch_and_is_never_written_twice(
    stack: Stack,
) -> None:
    """A credit already in the ledger under the order's key (as a crash between two systems
    could leave it) makes the batch's one statement write fewer rows than it drew: the batch
    fails, its events are handled one by one, and the order keeps its one credit."""
    shop = await stack.create_shop()
    order_id, other = new_order_id(), new_order_id()
    unpaid = paid_order(id=order_id, financial_status="pending")
    await stack.deliver(shop, unpaid, topic="orders/create")
    assert await drain_batch(stack.resources, 100) == 1
    async with stack.resources.sessionmaker() as session:
        order = await session.scalar(select(Order).where(Order.external_id == str(order_id)))
        assert order is not None and order.customer_id is not None
        session.add(
            LedgerEntry(
                shop_id=shop.id,
                customer_id=order.customer_id,
                order_id=order.id,
                kind=EntryKind.credit,
                amount=438,
                currency="USD",
                idempotency_key=f"order:{order.id}:credit",
            )
        )
        await session.commit()
    await stack.deliver(shop, paid_order(id=order_id))
    await stack.deliver(shop, paid_order(id=other))

    assert await drain_batch(stack.resources, 100) == 2  # then one by one, in savepoints

    assert await events_by_status(stack, shop) == {"processed": 3}
    assert (await stack.order(shop, order_id))["status"] == "processed"
    assert (await stack.order(shop, other))["credited_amount"] == "4.38"
    assert await stack.credit_count(shop) == 2  # the one found, and the other order's
