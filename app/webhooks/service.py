"""The webhook inbox: store each delivery once, then handle it from the database."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import bindparam, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog_service
from app.kit.queue import Job, defer_job
from app.notifications import service as notification_service
from app.observability.context import bind, current_request_id
from app.orders import prefetch as order_prefetch
from app.orders import refunds as refund_service
from app.orders import service as order_service
from app.orders.domain import PlatformCustomer, PlatformOrder
from app.privacy import service as privacy_service
from app.shopify import tokens as shopify_tokens
from app.shops.models import Shop
from app.webhooks import shopify
from app.webhooks.models import EventStatus, WebhookEvent

logger = logging.getLogger(__name__)

HANDLE_EVENT_JOB = "handle_webhook_event"


def event_job_id(event_id: int) -> str:
    return f"event:{event_id}"


@dataclass(frozen=True, slots=True)
class Delivery:
    topic: str
    event_key: str
    webhook_id: str | None
    api_version: str | None
    body: bytes
    triggered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Stored:
    event_id: int | None  # None: a duplicate of an event already stored
    malformed: bool = False

    @property
    def duplicate(self) -> bool:
        return self.event_id is None


async def store_event(session: AsyncSession, shop_id: int, delivery: Delivery) -> Stored:
    """Insert the delivery unless its topic and event key are known; queue its handling after
    commit."""
    malformed_error = malformed(delivery.body)
    stmt = (
        insert(WebhookEvent)
        .values(
            shop_id=shop_id,
            topic=delivery.topic,
            event_key=delivery.event_key,
            webhook_id=delivery.webhook_id,
            api_version=delivery.api_version,
            triggered_at=delivery.triggered_at,
            body=delivery.body,
            status=EventStatus.failed if malformed_error else EventStatus.received,
            error=malformed_error,
            handled_at=datetime.now(UTC) if malformed_error else None,
        )
        .on_conflict_do_nothing(
            index_elements=[WebhookEvent.shop_id, WebhookEvent.topic, WebhookEvent.event_key]
        )
        .returning(WebhookEvent.id)
    )
    event_id = (await session.execute(stmt)).scalar_one_or_none()
    if event_id is not None and malformed_error is None:
        defer_handling(session, event_id, delivery.topic)
    return Stored(event_id, malformed=malformed_error is not None)


def malformed(body: bytes) -> str | None:
    """Why a signed body can never be handled (not JSON, not an object); None when it can."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return f"malformed JSON: {exc}"
    if not isinstance(payload, dict):
        return "malformed payload: expected a JSON object"
    return None


PRIVACY_TOPICS = frozenset({"customers/redact", "shop/redact", "customers/data_request"})
# Topics handled alone, one job per event: they change or remove the shop and its data.
SOLO_TOPICS = PRIVACY_TOPICS | {"app/uninstalled"}

DRAIN_JOB = "drain_webhook_events"
DRAIN_BATCH = 100  # events per transaction
DRAIN_BUCKET_S = 0.1  # seconds: rings within one bucket share their drain jobs
DRAIN_FANOUT = 4  # drain jobs at most per bucket, so several worker processes share a flood
_DRAIN_DEFERRED = "cashback.drain_deferred"


def drain_job(bucket: int, helper: int = 0) -> Job:
    return Job(DRAIN_JOB, (bucket, helper), f"drain:{bucket}:{helper}")


def drain_jobs(now: float | None = None) -> list[Job]:  # seconds
    """The drain job a ring at `now` (Unix seconds) asks for.

    In a long-running worker the job only wakes the process's drain loops. In a burst run
    (no loops) it handles every unhandled event it can claim, a batch per transaction, until it
    finds none after the end of its bucket. Rings in the same bucket name the same job (arq
    queues a job id once), so a flood costs a few jobs per bucket, not one per event; an event
    committed before its ring is seen by its bucket's job, which looks once more after the
    bucket ends. A job that finds a full batch asks for a helper (up to DRAIN_FANOUT per
    bucket), so a flood is shared by every worker process."""
    bucket = int((time.time() if now is None else now) / DRAIN_BUCKET_S)
    return [drain_job(bucket)]


def bucket_end(bucket: int) -> float:  # seconds
    return (bucket + 1) * DRAIN_BUCKET_S


def handling_jobs(stored: Iterable[tuple[int, str, str | None]]) -> list[Job]:
    """The jobs that handle stored events, given as (event id, topic, request id): the current
    bucket's drain job once, and its own job for each event of a topic handled alone."""
    jobs: list[Job] = []
    drain = False
    for event_id, topic, request_id in stored:
        if topic in SOLO_TOPICS:
            jobs.append(Job(HANDLE_EVENT_JOB, (event_id,), event_job_id(event_id), request_id))
        else:
            drain = True
    return jobs + drain_jobs() if drain else jobs


def defer_handling(session: AsyncSession, event_id: int, topic: str) -> None:
    """Queue the handling of a stored event once `session` commits (a drain job is rung once
    per transaction)."""
    rung: set[str] = session.info.setdefault(_DRAIN_DEFERRED, set())
    for job in handling_jobs([(event_id, topic, current_request_id())]):
        if job.job_id not in rung:
            rung.add(job.job_id)
            defer_job(session, job.function, *job.args, job_id=job.job_id)


def defer_drain(session: AsyncSession) -> None:
    """Ring the current bucket's drain jobs once `session` commits (once per transaction)."""
    rung: set[str] = session.info.setdefault(_DRAIN_DEFERRED, set())
    for job in drain_jobs():
        if job.job_id not in rung:
            rung.add(job.job_id)
            defer_job(session, job.function, *job.args, job_id=job.job_id)


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


_CLAIM = (  # built once: a statement built per batch costs more CPU than its round trip
    select(WebhookEvent)
    .where(
        WebhookEvent.status == EventStatus.received,
        WebhookEvent.attempts == 0,
        WebhookEvent.topic.not_in(SOLO_TOPICS),
    )
    .order_by(WebhookEvent.received_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)


async def claim_batch(
    session: AsyncSession, limit: int
) -> list[tuple[tuple[int, str, int], WebhookEvent]]:
    """Lock up to `limit` unhandled events no other transaction holds, oldest first, in the
    order they should be handled. Events that failed once (attempts > 0) are left to their
    own job and its retries, so one bad event never fails a batch twice."""
    events = list(await session.scalars(_CLAIM, {"limit": limit}))
    payloads: dict[int, Any] = session.info.setdefault(_PAYLOADS, {})
    for event in events:  # each body is read once for the batch: lock keys, snapshots, handling
        with contextlib.suppress(orjson.JSONDecodeError):  # fails when handled, with its reason
            payloads[event.id] = orjson.loads(event.body)
    # Orders in a global order (shop, order id), each order's events oldest first: batches
    # running side by side lock the same orders in the same order, so never deadlock.
    keyed = [(lock_key(event, payloads.get(event.id)), event) for event in events]
    return sorted(keyed, key=lambda pair: pair[0])


_PAYLOADS = "cashback.batch_payloads"


def _payload(session: AsyncSession, event: WebhookEvent) -> Any:
    """The event's JSON body, as read when its batch was claimed."""
    payloads: dict[int, Any] = session.info.get(_PAYLOADS, {})
    return payloads[event.id] if event.id in payloads else orjson.loads(event.body)


def lock_key(event: WebhookEvent, payload: Any) -> tuple[int, str, int]:
    """(shop, order id or "" for an event of no order, event id)."""
    key = ""
    if isinstance(payload, dict) and (
        event.topic in shopify.ORDER_TOPICS or event.topic == "refunds/create"
    ):
        field = "id" if event.topic in shopify.ORDER_TOPICS else "order_id"
        key = _order_key(payload.get(field, ""))
    return event.shop_id, key, event.id


_SNAPSHOTS = "cashback.batch_snapshots"


async def prepare_batch(
    session: AsyncSession, claimed: list[tuple[tuple[int, str, int], WebhookEvent]]
) -> tuple[list[tuple[tuple[int, str, int], WebhookEvent]], int]:
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
    busy = await _busy_orders(session, {key[:2] for key, _ in claimed if key[1]})
    batch = [keyed for keyed in claimed if keyed[0][:2] not in busy]
    snapshots: dict[int, PlatformOrder] = {}
    keepers: dict[tuple[int, str], tuple[datetime, int]] = {}
    for _, event in batch:
        if event.topic not in shopify.ORDER_TOPICS:
            continue
        try:
            snapshot = shopify.parse_order(_payload(session, event), event.topic)
        except (orjson.JSONDecodeError, ValidationError, shopify.InvalidPayload):
            continue  # fails when handled, with its reason
        snapshots[event.id] = snapshot
        if snapshot.updated_at is not None:
            key = (event.shop_id, snapshot.external_id)
            keepers[key] = max(
                keepers.get(key, (snapshot.updated_at, event.id)), (snapshot.updated_at, event.id)
            )
    to_handle = []
    for keyed in batch:
        event = keyed[1]
        found = snapshots.get(event.id)
        keeper = None if found is None else keepers.get((event.shop_id, found.external_id))
        if found is not None and keeper is not None and _replaced(found, snapshots[keeper[1]]):
            del snapshots[event.id]
            why = f"replaced by a later snapshot of the order (event {keeper[1]})"
            _finish(session, event, EventStatus.ignored, why, tried=False)
        else:
            to_handle.append(keyed)
    session.info[_SNAPSHOTS] = snapshots
    by_shop: dict[int, list[PlatformOrder]] = {}
    for _, event in to_handle:
        if event.id in snapshots:
            by_shop.setdefault(event.shop_id, []).append(snapshots[event.id])
    for shop_id, shop_snapshots in sorted(by_shop.items()):
        shop = await _shop(session, shop_id)
        if shop.uninstalled_at is None:
            await order_prefetch.prefetch(session, shop, shop_snapshots)
    return to_handle, len(claimed) - len(batch)


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


async def mark_batch_failure(session: AsyncSession, event_id: int, error: str) -> None:
    """An event failed inside a batch: keep its error, count the try, and hand it to its own
    job (with retries); the batch's other events go on."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.received)
        .values(error=error[:4000], attempts=WebhookEvent.attempts + 1)
    )
    defer_job(session, HANDLE_EVENT_JOB, event_id, job_id=event_job_id(event_id))


_SHOPS = "cashback.shops"


async def _shop(session: AsyncSession, shop_id: int) -> Shop:
    """The shop, read once per transaction (the session's identity map holds it only while
    something refers to it)."""
    shops: dict[int, Shop] = session.info.setdefault(_SHOPS, {})
    if shop_id not in shops:
        shops[shop_id] = await session.get_one(Shop, shop_id)
    return shops[shop_id]


async def handle_claimed(session: AsyncSession, event: WebhookEvent) -> EventStatus | None:
    """Handle an event locked by this transaction."""
    shop = await _shop(session, event.shop_id)
    bind(shop_id=shop.id, event_id=event.id, topic=event.topic)  # this job's log lines
    if shop.uninstalled_at is not None and event.topic not in PRIVACY_TOPICS:
        return _finish(session, event, EventStatus.ignored, "the app is uninstalled for this shop")
    try:
        payload = _payload(session, event)
        outcome = await _dispatch(session, shop, event, payload)
    except (ValidationError, shopify.InvalidPayload, order_service.InvalidOrder) as exc:
        # Permanent: retrying the same bytes cannot succeed. Kept for a person to read.
        why = f"not a valid {event.topic} payload: {exc}"
        return _finish(session, event, EventStatus.failed, why)
    if outcome is None:  # shop/redact: the event went with the shop's data
        return EventStatus.processed
    logger.info("webhook event %s", outcome.value)
    return _finish(session, event, outcome)


async def _dispatch(
    session: AsyncSession, shop: Shop, event: WebhookEvent, payload: dict[str, Any]
) -> EventStatus | None:
    topic = event.topic
    if topic in shopify.ORDER_TOPICS:
        prepared: dict[int, PlatformOrder] = session.info.get(_SNAPSHOTS, {})
        snapshot = prepared.pop(event.id, None) or shopify.parse_order(payload, topic)
        order = await order_service.ingest_order(
            session, shop, snapshot, received_at=event.received_at
        )
        if snapshot.cancelled_at is not None:
            await refund_service.cancel(session, shop, order)
    elif topic == "refunds/create":
        await refund_service.record_refund(
            session, shop, shopify.parse_refund(payload, shop.currency)
        )
    elif topic in shopify.CUSTOMER_TOPICS:
        customer = shopify.ShopifyCustomer.model_validate(payload)
        await order_service.customer_appeared(
            session,
            shop,
            PlatformCustomer(
                customer.id,
                customer.email,
                customer.first_name,
                customer.last_name,
                shopify.split_tags(customer.tags),
                verified_email=customer.verified_email,
                state=customer.state,
            ),
        )
    elif topic in shopify.PRODUCT_TOPICS:
        product = shopify.ShopifyProduct.model_validate(payload)
        await catalog_service.upsert_product(
            session,
            shop.id,
            product.id,
            title=product.title,
            product_type=product.product_type,
            vendor=product.vendor,
            tags=shopify.split_tags(product.tags),
        )
    elif topic == "customers/redact":
        request = shopify.ShopifyPrivacyRequest.model_validate(payload)
        await privacy_service.redact_customer(
            session,
            shop,
            request.customer.id if request.customer else None,
            email=request.customer.email if request.customer else None,
            orders_to_redact=request.orders_to_redact,
        )
        event.body = privacy_service.REDACTED_BODY  # the request names the customer too
    elif topic == "customers/data_request":
        request = shopify.ShopifyPrivacyRequest.model_validate(payload)
        export = await privacy_service.export_customer(
            session,
            shop,
            request.customer.id if request.customer else None,
            orders_requested=request.orders_requested,
        )
        await notification_service.enqueue_alert(
            session,
            shop,
            event_key=f"data_request:{event.id}",
            event_type="customers.data_request",
            payload={"request": payload, "export": export},
        )
    elif topic == "shop/redact":
        session.expunge(event)  # the event row goes with the shop's data
        await privacy_service.redact_shop(session, shop)
        return None
    elif topic == "app/uninstalled":
        shop.uninstalled_at = datetime.now(UTC)
        await shopify_tokens.drop(session, shop)
    elif topic == "app/scopes_update":
        current = payload.get("current")
        if not isinstance(current, list):
            raise shopify.InvalidPayload("app/scopes_update without a `current` list")
        await shopify_tokens.record_scopes(session, shop, [str(scope) for scope in current])
    else:
        # Includes orders/edited: the edited order arrives as orders/updated.
        return EventStatus.ignored
    return EventStatus.processed


def _finish(
    session: AsyncSession,
    event: WebhookEvent,
    status: EventStatus,
    error: str | None = None,
    *,
    tried: bool = True,
) -> EventStatus:
    """The event is handled (`tried`: a try is counted): at once, or with the rest of its
    batch in one statement (`write_finished`)."""
    finished: list[tuple[int, str, str | None, datetime, int]] | None = session.info.get(_FINISHED)
    if finished is not None:
        finished.append((event.id, status.value, error, datetime.now(UTC), int(tried)))
        return status
    event.status = status
    event.error = error
    event.handled_at = datetime.now(UTC)
    event.attempts += int(tried)
    return status


_FINISHED = "cashback.finished_events"
_WRITE_FINISHED = text(
    "UPDATE webhook_events AS w"
    " SET status = v.status, error = v.error, handled_at = v.handled_at,"
    " attempts = w.attempts + v.tries"
    " FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:errors AS text[]),"
    " CAST(:handled AS timestamptz[]), CAST(:tries AS int[]))"
    " AS v(id, status, error, handled_at, tries)"
    " WHERE w.id = v.id"
)


def defer_finishing(session: AsyncSession) -> None:
    """Hold the outcomes of this transaction's events and write them in one statement before
    it commits (`write_finished`), instead of an ORM update per event."""
    session.info.setdefault(_FINISHED, [])


async def write_finished(session: AsyncSession) -> None:
    finished: list[tuple[int, str, str | None, datetime, int]] = session.info.pop(_FINISHED, [])
    if finished:
        ids, statuses, errors, handled, tries = (
            list(column) for column in zip(*finished, strict=True)
        )
        await session.execute(
            _WRITE_FINISHED,
            {
                "ids": ids,
                "statuses": statuses,
                "errors": errors,
                "handled": handled,
                "tries": tries,
            },
        )


async def record_failure(session: AsyncSession, event_id: int, error: str, *, final: bool) -> None:
    """Keep the error of a failed try; on the last try the event and its order become failed
    and the merchant is alerted (`order.failed`, or `webhook.failed` for an order event whose
    order never got stored: every try rolled back)."""
    values: dict[str, object] = {
        "error": error[:4000],
        "attempts": WebhookEvent.attempts + 1,
    }
    if final:
        values |= {"status": EventStatus.failed, "handled_at": datetime.now(UTC)}
    event = (
        await session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.received)
            .values(**values)
            .returning(WebhookEvent)
        )
    ).scalar_one_or_none()
    if event is None or not final or event.topic not in shopify.ORDER_TOPICS:
        return
    external_id = str(orjson.loads(event.body).get("id", ""))
    order = await order_service.find_order(session, event.shop_id, external_id, lock=True)
    if order is not None:
        await order_service.mark_failed(session, order, error)
        return
    shop = await _shop(session, event.shop_id)
    await notification_service.enqueue_alert(
        session,
        shop,
        event_key=f"event:{event_id}:failed",
        event_type="webhook.failed",
        payload={
            "event": {"id": str(event_id), "topic": event.topic, "order_external_id": external_id},
            "error": error[:1000],
        },
    )


async def stale_events(session: AsyncSession, older_than: datetime, limit: int) -> list[int]:
    result = await session.execute(
        select(WebhookEvent.id)
        .where(WebhookEvent.status == EventStatus.received, WebhookEvent.received_at < older_than)
        .order_by(WebhookEvent.received_at)
        .limit(limit)
    )
    return list(result.scalars())
