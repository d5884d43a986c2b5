"""Draining the inbox: claim stored deliveries a batch at a time, plan the batch, and hand each
event to its topic's handler (`app.shopify.topics`), all in one transaction per batch.

A batch is one unit of work opened with `batch=True`: its audit rows, sync rows, figures and
the events' outcomes are held by the unit of work and written at once before the commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.context import bind, bound
from app.core.resources import Resources
from app.core.snapshots import PlatformOrder
from app.core.uow import Part, Stage, savepoint, unit_of_work, uow_of
from app.inbox import service
from app.inbox.models import UNCLAIMED, EventStatus, WebhookEvent
from app.inbox.service import shop_of
from app.orders import prefetch as order_prefetch
from app.shopify import payloads
from app.shopify.topics import INVALID_PAYLOAD_ERRORS, PRIVACY_TOPICS, SOLO_TOPICS, TOPICS, Incoming

logger = logging.getLogger(__name__)

BUSY_WAIT_S = 0.01  # seconds a batch whose orders were all busy elsewhere waits before the next
DRAINERS = 2  # drain loops per worker process: one works while another waits on the database
DRAIN_IDLE_MAX_S = 1.0  # an idle loop looks this often at most; rings bring new work sooner

LockKey = tuple[int, str, int]  # (shop, order id or "" for an event of no order, event id)


@dataclass
class Batch:
    """The events a transaction claimed, in the order they are handled, with each body read
    once and each order snapshot parsed once."""

    events: list[tuple[LockKey, WebhookEvent]]
    payloads: dict[int, Any]
    snapshots: dict[int, PlatformOrder] = field(default_factory=dict)

    def payload(self, event: WebhookEvent) -> Any:
        return self.payloads[event.id] if event.id in self.payloads else orjson.loads(event.body)


async def drain_batch(res: Resources, limit: int) -> int:
    """Claim and handle up to `limit` events in one transaction; returns how many. When the
    batch fails, it is done again one event per savepoint: an event that fails alone is
    handed to its own job, the others are handled."""
    try:
        async with unit_of_work(res.sessionmaker, res.broker, batch=True) as session:
            batch = await claim_batch(session, limit)
            if not batch.events:
                return 0
            previous: LockKey | None = None
            to_handle, busy = await plan_batch(session, batch)
            for key, event in to_handle:
                # The session does not flush on its own: what an earlier event of the batch
                # changed must be in the database before a later one reads it (the same
                # order again, or a customer, refund or product event).
                if previous is not None and (key[:2] == previous[:2] or not key[1]):
                    await session.flush()
                previous = key
                with bound():
                    await handle_claimed(session, event, batch)
        if busy == len(batch.events):  # every order was in another batch's hands: let it finish
            await asyncio.sleep(BUSY_WAIT_S)
        return len(batch.events)
    except Exception as exc:
        logger.warning("a batch of events failed (%r); handling them one by one", exc)
    async with unit_of_work(res.sessionmaker, res.broker) as session:
        batch = await claim_batch(session, limit)
        for _, event in batch.events:
            event_id = event.id
            try:
                with bound():
                    async with savepoint(session):
                        await handle_claimed(session, event, batch)
            except Exception as exc:
                await service.mark_batch_failure(session, event_id, f"{type(exc).__name__}: {exc}")
        return len(batch.events)


async def drain_continuously(
    res: Resources,
    wake: asyncio.Event,
    *,
    idle_s: float,  # seconds
    linger_s: float = 0.0,  # seconds
) -> None:
    """Drain the inbox for as long as the worker runs: the process's few loops do all its
    draining, so a flood makes their batches larger rather than their number. A ring (the
    `drain_webhook_events` job) sets `wake`; events are handled even when Redis drops a ring.
    Finding nothing, a loop waits for `wake` up to `idle_s` seconds, then twice as long each
    time up to DRAIN_IDLE_MAX_S, so an idle worker costs next to nothing. After a batch that was
    not full a loop waits `linger_s`, so a steady trickle makes batches of several orders
    instead of one each (a batch's fixed statements are most of its cost). A loop that finds a
    full batch rings the other processes' loops to share the flood (DRAIN_FANOUT - 1 jobs of
    the current bucket, which the queue holds once each)."""
    wait = idle_s
    while True:
        wake.clear()  # a ring from now on is for events this batch may not see
        try:
            count = await drain_batch(res, service.DRAIN_BATCH)
        except Exception:
            logger.exception("draining webhook events failed; trying again shortly")
            await asyncio.sleep(DRAIN_IDLE_MAX_S)
            continue
        if count == service.DRAIN_BATCH:
            bucket = int(time.time() / service.DRAIN_BUCKET_S)
            helpers = range(1, service.DRAIN_FANOUT)
            await res.broker.enqueue([service.drain_job(bucket, helper) for helper in helpers])
        if count:
            wait = idle_s
            if count < service.DRAIN_BATCH and linger_s:
                await asyncio.sleep(linger_s)  # a trickle: the next batch fills meanwhile
            continue
        try:
            await asyncio.wait_for(wake.wait(), wait)
            wait = idle_s
        except TimeoutError:
            wait = min(max(wait * 2, 0.01), DRAIN_IDLE_MAX_S)


# --- claiming and planning a batch


_CLAIM = (  # built once: a statement built per batch costs more CPU than its round trip
    select(WebhookEvent)
    .where(
        text(UNCLAIMED),  # in words, as the index states it: every plan can use the index
        WebhookEvent.ready_at <= func.now(),
        WebhookEvent.topic.not_in(SOLO_TOPICS),
    )
    .order_by(WebhookEvent.ready_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


async def claim_batch(session: AsyncSession, limit: int) -> Batch:
    """Lock up to `limit` ready events no other transaction holds, oldest first, in the
    order they should be handled. Events that failed once (attempts > 0) are left to their
    own job and its retries, so one bad event never fails a batch twice. An `orders/create` is
    ready only `create_settle_s` after it was stored (its `ready_at`): its order's
    `orders/paid`, on a real store a second behind it at most, then replaces it in one batch
    (plan_batch) or has been handled already (the create is then stale), and the order is
    evaluated once, not twice. The drain loops look again within DRAIN_IDLE_MAX_S, so a create
    waits at most about settle + DRAIN_IDLE_MAX_S."""
    params = {"limit": limit}
    events = list(await session.scalars(_CLAIM, params))
    bodies: dict[int, Any] = {}
    for event in events:  # each body is read once for the batch: lock keys, snapshots, handling
        with contextlib.suppress(orjson.JSONDecodeError):  # fails when handled, with its reason
            bodies[event.id] = orjson.loads(event.body)
    # Orders in a global order (shop, order id), each order's events oldest first: batches
    # running side by side lock the same orders in the same order, so never deadlock.
    keyed = [(lock_key(event, bodies.get(event.id)), event) for event in events]
    return Batch(sorted(keyed, key=lambda pair: pair[0]), bodies)


def lock_key(event: WebhookEvent, payload: Any) -> LockKey:
    """(shop, order id or "" for an event of no order, event id)."""
    key = ""
    topic = TOPICS.get(event.topic)
    if isinstance(payload, dict) and topic is not None and topic.order_field is not None:
        key = _order_key(payload.get(topic.order_field, ""))
    return event.shop_id, key, event.id


async def plan_batch(
    session: AsyncSession, batch: Batch
) -> tuple[list[tuple[LockKey, WebhookEvent]], int]:
    """Set aside the events of orders another batch is handling, read each order snapshot of
    the rest once, finish the snapshots that a later one in the batch replaces, and prefetch
    what the others need; returns the events to handle and how many were set aside.

    An order is taken with a transaction-scoped advisory try-lock: a batch that finds one of
    its orders in another batch's hands leaves that order's events unhandled (still
    `received`, for a later batch) instead of waiting for the other batch's commit with its
    own orders locked. Worker processes that share a flood then do not queue behind each other.

    Of an order's snapshots in the batch, the keeper is the newest (by `updated_at`, then by
    arrival). Another snapshot is replaced by it when it is neither paid nor cancelled and
    names no other customer: handling both ends where handling the keeper alone ends (the
    keeper overwrites every fact the other would have stored, and a replayed older snapshot
    is ignored as stale anyway). In a flood an order's create and paid events often meet in
    one batch, and the order is then evaluated once."""
    claimed = batch.events
    busy = await _busy_orders(session, {key[:2] for key, _ in claimed if key[1]})
    mine = [keyed for keyed in claimed if keyed[0][:2] not in busy]
    snapshots = batch.snapshots
    keepers: dict[tuple[int, str], tuple[datetime, int]] = {}
    for _, event in mine:
        topic = TOPICS.get(event.topic)
        if topic is None or not topic.snapshot:
            continue
        try:
            snapshot = payloads.parse_order(batch.payload(event), event.topic)
        except (orjson.JSONDecodeError, ValidationError, payloads.InvalidPayload):
            continue  # fails when handled, with its reason
        snapshots[event.id] = snapshot
        if snapshot.updated_at is not None:
            key = (event.shop_id, snapshot.external_id)
            keepers[key] = max(
                keepers.get(key, (snapshot.updated_at, event.id)), (snapshot.updated_at, event.id)
            )
    to_handle = []
    for keyed in mine:
        event = keyed[1]
        found = snapshots.get(event.id)
        keeper = None if found is None else keepers.get((event.shop_id, found.external_id))
        if found is not None and keeper is not None and _replaced(found, snapshots[keeper[1]]):
            del snapshots[event.id]
            why = f"replaced by a later snapshot of the order (event {keeper[1]})"
            _finish(session, event, EventStatus.ignored, why, tried=False)
        else:
            to_handle.append(keyed)
    by_shop: dict[int, list[PlatformOrder]] = {}
    for _, event in to_handle:
        if event.id in snapshots:
            by_shop.setdefault(event.shop_id, []).append(snapshots[event.id])
    for shop_id, shop_snapshots in sorted(by_shop.items()):
        shop = await shop_of(session, shop_id)
        if shop.uninstalled_at is None:
            await order_prefetch.prefetch(session, shop, shop_snapshots)
    return to_handle, len(claimed) - len(mine)


def _order_key(order_id: object) -> str:
    return str(order_id).rjust(24, "0")  # numeric ids sort as numbers


def order_lock_name(shop_id: int, order_id: object) -> str:
    """The name of the advisory lock a batch takes on an order while it handles it."""
    return _lock_name(shop_id, _order_key(order_id))


def _lock_name(shop_id: int, order_key: str) -> str:
    return f"order:{shop_id}:{order_key}"


_TRY_LOCK_ORDERS = text(
    "SELECT k FROM unnest(CAST(:keys AS text[])) AS k"
    " WHERE NOT pg_try_advisory_xact_lock(hashtextextended(k, 0))"
)


async def _busy_orders(session: AsyncSession, orders: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Try to take each (shop, order key) for this transaction; returns those another
    transaction holds."""
    if not orders:
        return set()
    keys = {_lock_name(shop_id, order_key): (shop_id, order_key) for shop_id, order_key in orders}
    held = await session.scalars(_TRY_LOCK_ORDERS, {"keys": sorted(keys)})
    return {keys[key] for key in held}


def _replaced(snapshot: PlatformOrder, keeper: PlatformOrder) -> bool:
    return (
        snapshot is not keeper
        and snapshot.updated_at is not None
        and not snapshot.paid
        and snapshot.cancelled_at is None
        and (
            snapshot.customer is None
            or (
                keeper.customer is not None
                and keeper.customer.external_id == snapshot.customer.external_id
            )
        )
    )


# --- handling one event


async def handle_event(session: AsyncSession, event_id: int) -> EventStatus | None:
    """Handle one stored event; None when it is already handled or another worker holds it."""
    event = (
        await session.execute(
            select(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.received)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if event is None:
        return None
    return await handle_claimed(session, event)


async def handle_claimed(
    session: AsyncSession, event: WebhookEvent, batch: Batch | None = None
) -> EventStatus | None:
    """Handle an event locked by this transaction (`batch`: the batch that claimed it)."""
    shop = await shop_of(session, event.shop_id)
    bind(shop_id=shop.id, event_id=event.id, topic=event.topic)  # this job's log lines
    if shop.uninstalled_at is not None and event.topic not in PRIVACY_TOPICS:
        return _finish(session, event, EventStatus.ignored, "the app is uninstalled for this shop")
    topic = TOPICS.get(event.topic)
    if topic is None:
        return _finish(session, event, EventStatus.ignored)
    try:
        payload = orjson.loads(event.body) if batch is None else batch.payload(event)
        snapshot = None if batch is None else batch.snapshots.pop(event.id, None)
        outcome = await topic.handle(session, shop, Incoming(event, payload, snapshot))
    except (ValidationError, *INVALID_PAYLOAD_ERRORS) as exc:  # type: ignore[misc]
        # Permanent: retrying the same bytes cannot succeed. Kept for a person to read.
        why = f"not a valid {event.topic} payload: {exc}"
        return _finish(session, event, EventStatus.failed, why)
    if outcome is None:  # shop/redact: the event went with the shop's data
        return EventStatus.processed
    logger.info("webhook event %s", outcome.value)
    return _finish(session, event, outcome)


@dataclass
class Outcomes(Part):
    """A batch's event outcomes, (event id, status, error, handled at, tries counted), written
    in one statement before it commits instead of an ORM update per event."""

    stage = Stage.OUTCOMES
    batched = True
    rows: list[tuple[int, str, str | None, datetime, int]] = field(default_factory=list)

    async def flush(self, session: AsyncSession) -> None:
        finished, self.rows = self.rows, []
        if not finished:
            return
        ids, statuses, errors, handled, tries = (
            list(column) for column in zip(*finished, strict=True)
        )
        await session.execute(
            _WRITE_OUTCOMES,
            {
                "ids": ids,
                "statuses": statuses,
                "errors": errors,
                "handled": handled,
                "tries": tries,
            },
        )


_WRITE_OUTCOMES = text(
    "UPDATE webhook_events AS w"
    " SET status = v.status, error = v.error, handled_at = v.handled_at,"
    " attempts = w.attempts + v.tries"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:errors AS text[]),"
    " CAST(:handled AS timestamptz[]), CAST(:tries AS int[]))"
    " AS v(id, status, error, handled_at, tries)"
    " WHERE w.id = v.id"
)


def _finish(
    session: AsyncSession,
    event: WebhookEvent,
    status: EventStatus,
    error: str | None = None,
    *,
    tried: bool = True,
) -> EventStatus:
    """The event is handled (`tried`: a try is counted): at once, or in a batch with the rest of
    its batch in one statement."""
    outcomes = uow_of(session).get(Outcomes)
    if outcomes is not None:
        outcomes.rows.append((event.id, status.value, error, datetime.now(UTC), int(tried)))
        return status
    event.status = status
    event.error = error
    event.handled_at = datetime.now(UTC)
    event.attempts += int(tried)
    return status
