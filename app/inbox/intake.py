"""The hot path of `POST /webhooks/shopify`: group commit of the webhook inbox.

Each request hands its delivery to the process's `Intake` and awaits its commit. Deliveries
that arrive while a write is in flight wait for the next one, and each write stores all of them
with ONE autocommitted multi-row INSERT … ON CONFLICT DO NOTHING RETURNING (one round trip, one
WAL flush), then queues all of their jobs with ONE Redis call. Under load a write carries dozens
of deliveries; after a small write the next waits `intake_linger_s` (2 ms) first, so that at a
moderate rate the deliveries of that moment still share it. A request is answered only once the
statement that stored its row has committed; when it fails, every request of that write fails
(503 when the database is unreachable: Shopify retries). Each row is stamped with when the
drain may take it (`ready_at`): at once, an `orders/create` `create_settle_s` later. The jobs
go to Redis before the answers, as for any request; a job Redis did not take is re-queued by
the sweeper, which finds the event still `received`.

A shop installed through the app (it has a Shopify grant) is signed with the app's client
secret (or the previous one while it is rotated); a shop made by hand for admin-created
webhooks, with its own key. Shops are looked up once per `SHOP_TTL_S` per process. A signature
that does not verify against the cached secret is checked again against the database at once,
so a new secret works immediately; an old secret keeps verifying for at most `SHOP_TTL_S` after
it is replaced, and a deleted shop's deliveries are refused by the write itself (its rows are
not inserted).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.core.broker import Broker
from app.core.context import current_request_id
from app.core.errors import ProblemError, Unauthorized, is_database_unavailable
from app.inbox.models import EventStatus
from app.inbox.service import (
    DRAIN_JOB,
    SETTLING_TOPIC,
    Delivery,
    Stored,
    handling_jobs,
    malformed,
)
from app.shopify import payloads as shopify

logger = logging.getLogger(__name__)

SHOP_TTL_S = 30.0
MAX_BATCH = 500  # rows per statement
MAX_WRITES_IN_FLIGHT = 2  # one statement being written while the next batch fills
LINGER_BELOW = 8  # deliveries: a write after a smaller one waits `intake_linger_s` first

_SHOP_SQL = """
SELECT s.id, s.webhook_secret, g.shop_id IS NOT NULL AS app_installed
FROM shops s LEFT JOIN shopify_grants g ON g.shop_id = s.id
WHERE s.domain = $1
"""
# The rows come as one array per column. Rows of a shop that no longer exists are skipped, and
# so are (shop, topic, event key) triples already stored: RETURNING names the rows written.
_INSERT_SQL = """
INSERT INTO webhook_events
    (shop_id, topic, event_key, webhook_id, api_version, triggered_at, body, status, error,
     handled_at, ready_at)
SELECT d.shop_id, d.topic, d.event_key, d.webhook_id, d.api_version, d.triggered_at, d.body,
       d.status, d.error, CASE WHEN d.error IS NULL THEN NULL ELSE now() END,
       now() + CASE WHEN d.topic = $10 THEN $11::interval ELSE interval '0' END
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
            $7::bytea[], $8::text[], $9::text[])
     AS d(shop_id, topic, event_key, webhook_id, api_version, triggered_at, body, status, error)
WHERE EXISTS (SELECT 1 FROM shops s WHERE s.id = d.shop_id)
ON CONFLICT (shop_id, topic, event_key) DO NOTHING
RETURNING id, shop_id, topic, event_key
"""
_SHOPS_EXIST_SQL = "SELECT id FROM shops WHERE id = ANY($1::bigint[])"


class DatabaseUnavailable(ProblemError):
    status, code, title = 503, "database_unavailable", "Database unavailable"


GONE = "the signature does not match a known shop"  # the shop was deleted


@dataclass(frozen=True, slots=True)
class ShopKey:
    id: int
    secrets: tuple[str, ...]  # any of them may sign the shop's deliveries

    def signed(self, body: bytes, signature: str) -> bool:
        return any(shopify.verify(body, secret, signature) for secret in self.secrets)


@dataclass(slots=True)
class _Pending:
    shop_id: int
    delivery: Delivery
    error: str | None  # malformed: stored as failed, never handled
    request_id: str | None
    done: asyncio.Future[Stored]


class Intake:
    """One per process (per Resources): the shop cache and the group-commit writer."""

    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        settings: Settings,
        app_secrets: tuple[str, ...] = (),
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.settings = settings  # read at each write: `create_settle_s` stamps a create's ready_at
        self.app_secrets = app_secrets  # the Shopify app's client secrets, current first
        self._shops: dict[str, tuple[float, ShopKey]] = {}  # domain: (expiry, shop)
        self._loading: dict[str, asyncio.Future[ShopKey | None]] = {}
        self._pending: list[_Pending] = []
        self._writes = 0
        self._last_batch = 0  # deliveries in the last write
        self._rung: str | None = None  # the drain job this process last queued
        self._tasks: set[asyncio.Task[None]] = set()

    # -- shops ------------------------------------------------------------------------------

    async def verified_shop(self, domain: str, body: bytes, signature: str) -> int | None:
        """The id of the shop whose secret signed `body`; None when none did."""
        cached = self._shops.get(domain)  # (expiry, shop)
        if (
            cached is not None
            and cached[0] > time.monotonic()
            and cached[1].signed(body, signature)
        ):
            return cached[1].id
        shop = await self._load_shop(domain)  # unknown, expired, or perhaps a new secret
        if shop is not None and shop.signed(body, signature):
            return shop.id
        return None

    async def _load_shop(self, domain: str) -> ShopKey | None:
        loading = self._loading.get(domain)
        if loading is not None:  # one query for a burst of the same shop
            return await asyncio.shield(loading)
        future: asyncio.Future[ShopKey | None] = asyncio.get_running_loop().create_future()
        self._loading[domain] = future
        try:
            async with self.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                pg = raw.driver_connection
                assert pg is not None
                try:
                    row = await pg.fetchrow(_SHOP_SQL, domain)
                except Exception as exc:
                    if connection_lost(exc):
                        await conn.invalidate()
                        raise DatabaseUnavailable("Retry shortly.") from exc
                    raise
            if row is None:  # unknown domains are not remembered: any string can be sent
                self._shops.pop(domain, None)
                shop = None
            else:
                own = (str(row["webhook_secret"]),)
                shop = ShopKey(
                    int(row["id"]), own + (self.app_secrets if row["app_installed"] else ())
                )
                self._shops[domain] = (time.monotonic() + SHOP_TTL_S, shop)
            future.set_result(shop)
            return shop
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        finally:
            del self._loading[domain]

    # -- the inbox ----------------------------------------------------------------------------

    async def store(self, shop_id: int, delivery: Delivery) -> Stored:
        """Returns once the delivery's row is committed (or known to be a duplicate)."""
        done: asyncio.Future[Stored] = asyncio.get_running_loop().create_future()
        self._pending.append(
            _Pending(shop_id, delivery, malformed(delivery.body), current_request_id(), done)
        )
        if self._writes < MAX_WRITES_IN_FLIGHT:
            self._writes += 1
            task = asyncio.create_task(self._write_pending())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await done

    async def _write_pending(self) -> None:
        try:
            # After a small write (a moderate rate: each delivery nearly alone), wait a moment
            # so the next deliveries share this one's statement and commit. After a large
            # one (a flood) the batches fill on their own, and waiting would only idle.
            if self.settings.intake_linger_s and self._last_batch < LINGER_BELOW:
                await asyncio.sleep(self.settings.intake_linger_s)
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._last_batch = len(batch)
                await self._write(batch)
        finally:
            self._writes -= 1

    async def _write(self, batch: list[_Pending]) -> None:
        try:
            written, missing_shops = await self._insert(batch)
        except Exception as exc:  # every delivery of the statement failed
            unavailable = connection_lost(exc)
            if not unavailable and len(batch) > 1:
                # One delivery the database refuses (say, an over-long header) must not fail
                # the others: each is written on its own, and only that one fails.
                for p in batch:
                    await self._write([p])
                return
            if unavailable:
                logger.warning("database unavailable: %r", exc)
            else:
                logger.exception("webhook intake failed for %d deliveries", len(batch))
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(
                        DatabaseUnavailable("Retry shortly.") if unavailable else exc
                    )
            return
        stored: list[tuple[int, str, str | None]] = []
        answers: list[tuple[_Pending, Stored | ProblemError]] = []
        for p in batch:
            event_id = written.pop((p.shop_id, p.delivery.topic, p.delivery.event_key), None)
            if p.shop_id in missing_shops:
                result: Stored | ProblemError = Unauthorized(GONE)
            else:
                result = Stored(event_id, malformed=p.error is not None)
            if event_id is not None and p.error is None:
                stored.append((event_id, p.delivery.topic, p.request_id))
            answers.append((p, result))
        # The current bucket's drain job is one job id: once this process has queued it, a
        # later write in the bucket would only be refused for it (at a Redis round trip each).
        jobs = [job for job in handling_jobs(stored) if job.job_id != self._rung]
        # Queued before answering, as for any other request: a job that Redis did not take
        # is re-queued by the sweeper.
        for job in await self.broker.enqueue_each(jobs):
            if job.function == DRAIN_JOB:
                self._rung = job.job_id
        for p, result in answers:
            if p.done.done():  # the request went away; its row is stored all the same
                continue
            if isinstance(result, ProblemError):
                p.done.set_exception(result)
            else:
                p.done.set_result(result)

    async def _insert(
        self, batch: list[_Pending]
    ) -> tuple[dict[tuple[int, str, str], int], set[int]]:
        columns: tuple[list[object], ...] = ([], [], [], [], [], [], [], [], [])
        for p in batch:
            d = p.delivery
            status = EventStatus.failed if p.error else EventStatus.received
            row = (
                p.shop_id,
                d.topic,
                d.event_key,
                d.webhook_id,
                d.api_version,
                d.triggered_at,
                d.body,
            )
            for column, value in zip(columns, (*row, status.value, p.error), strict=True):
                column.append(value)
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            pg = raw.driver_connection
            assert pg is not None
            if pg.is_in_transaction():  # then the answer would come before the commit
                raise RuntimeError("a pooled connection came back inside a transaction")
            try:
                # Outside a transaction block the statement commits on its own: one round trip.
                settle = timedelta(seconds=self.settings.create_settle_s)
                rows = await pg.fetch(_INSERT_SQL, *columns, SETTLING_TOPIC, settle)
                written = {
                    (int(r["shop_id"]), str(r["topic"]), str(r["event_key"])): int(r["id"])
                    for r in rows
                }
                missing: set[int] = set()
                if len(rows) < len(batch):  # duplicates, or a shop deleted since it was cached
                    asked = list({p.shop_id for p in batch})
                    found = {int(r["id"]) for r in await pg.fetch(_SHOPS_EXIST_SQL, asked)}
                    missing = set(asked) - found
            except Exception as exc:
                if connection_lost(exc):
                    await conn.invalidate()  # not back into the pool
                raise
        return written, missing


def connection_lost(exc: BaseException) -> bool:
    """The database is unreachable (refused, reset, restarting), as asyncpg or SQLAlchemy says."""
    return is_database_unavailable(exc) or isinstance(exc, _ASYNCPG_CONNECTION_ERRORS)


_ASYNCPG_CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,  # among others, "connection is closed"
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)
