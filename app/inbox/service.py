"""The webhook inbox: store each delivery once, then handle it from the database."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Job
from app.core.context import current_request_id
from app.core.uow import Part, defer_job, uow_of
from app.inbox.models import EventStatus, WebhookEvent
from app.notifications import service as notification_service
from app.orders import lifecycle as order_lifecycle
from app.shopify.topics import ORDER_TOPICS, SOLO_TOPICS
from app.shops.models import Shop

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


# An `orders/create` is ready for the drain `create_settle_s` after it is stored (the intake
# stamps its ready_at), so the order's `orders/paid` meets it in one batch or has been handled.
SETTLING_TOPIC = "orders/create"

DRAIN_JOB = "drain_webhook_events"
DRAIN_BATCH = 100  # events per transaction
DRAIN_BUCKET_S = 0.1  # seconds: rings within one bucket share their drain jobs
DRAIN_FANOUT = 4  # drain jobs at most per bucket, so several worker processes share a flood


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
    """Queue the handling of a stored event once `session` commits (a drain job is queued
    once per transaction: the unit of work holds a job id once)."""
    for job in handling_jobs([(event_id, topic, current_request_id())]):
        defer_job(session, job.function, *job.args, job_id=job.job_id)


def defer_drain(session: AsyncSession) -> None:
    """Queue the current bucket's drain job once `session` commits."""
    for job in drain_jobs():
        defer_job(session, job.function, *job.args, job_id=job.job_id)


@dataclass
class Shops(Part):
    """The shops a transaction read, by id."""

    by_id: dict[int, Shop] = field(default_factory=dict)


async def shop_of(session: AsyncSession, shop_id: int) -> Shop:
    """The shop, read once per transaction (the session's identity map holds it only while
    something refers to it)."""
    shops = uow_of(session).open(Shops).by_id
    if shop_id not in shops:
        shops[shop_id] = await session.get_one(Shop, shop_id)
    return shops[shop_id]


async def mark_batch_failure(session: AsyncSession, event_id: int, error: str) -> None:
    """An event failed inside a batch: keep its error, count the try, and hand it to its own
    job (with retries); the batch's other events go on."""
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id == event_id, WebhookEvent.status == EventStatus.received)
        .values(error=error[:4000], attempts=WebhookEvent.attempts + 1)
    )
    defer_job(session, HANDLE_EVENT_JOB, event_id, job_id=event_job_id(event_id))


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
    if event is None or not final or event.topic not in ORDER_TOPICS:
        return
    external_id = str(orjson.loads(event.body).get("id", ""))
    order = await order_lifecycle.find_order(session, event.shop_id, external_id, lock=True)
    if order is not None:
        await order_lifecycle.mark_failed(session, order, error)
        return
    shop = await shop_of(session, event.shop_id)
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
