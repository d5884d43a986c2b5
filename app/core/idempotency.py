"""`Idempotency-Key` on the POSTs that change state: a retried request gets the first answer.

A pure ASGI middleware, so routes stay plain. For a POST under `/v1/` (except the read-only
computations in READ_ONLY_OPERATIONS) that carries the header and credentials:

- the key is claimed in its own short transaction, scoped to the caller (a SHA-256 of the
  `Authorization` value, so no caller ever sees another's stored answer);
- same key, same request (method, path, body) and an answer stored → that answer again, byte
  for byte, with `Idempotent-Replayed: true`;
- same key, another request → 422 `idempotency_key_reused`;
- same key while the first is still running → 409 `idempotency_key_in_use` with Retry-After;
- the answer is stored before it is sent, so a client that got it can only ever get it again;
  answers that mean "not done, retry as is" (5xx, 401, 429) are not stored and free the key.

A route whose retry must not do its work twice even after a crash (`createApiKey`: a second
key) stores its answer in its own transaction, with the work (`store_with_work`): a process that
dies between that commit and the middleware's own record leaves the answer stored all the same.
For the other routes, the key is freed when its lease ends and a retry runs again; the review
actions then answer 409 (the order moved on).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    delete,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.db import Base, IdMixin
from app.core.errors import RETRY_AFTER_HEADER, problem_declaration, problem_response

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# POSTs that compute an answer and change nothing: a retry is already harmless.
READ_ONLY_OPERATIONS = frozenset({"previewCashback", "simulateProgram"})
# Longer than any request runs; a key whose request died is free again after it.
IN_FLIGHT_LEASE = timedelta(seconds=60)
IN_USE_RETRY_AFTER_S = 1
# Answers that say the request was not carried out and may be sent again as is.
NOT_STORED = frozenset({401, 429})
# Headers a replay repeats; the rest (request id, CORS) belong to each request.
REPLAYED_HEADERS = frozenset({"content-type", "etag", "location", "retry-after"})
PRUNE_BATCH = 5000


class IdempotencyKey(IdMixin, Base):
    """A client's key and the first answer to it, kept for the retention period."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("caller", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    caller: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    method: Mapped[str] = mapped_column(String(8), nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    # Null while the first request runs.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[list[list[str]] | None] = mapped_column(JSONB)
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


def valid_key(key: str) -> bool:
    """1–255 printable ASCII characters (space through tilde)."""
    return 1 <= len(key) <= 255 and all(" " <= c <= "~" for c in key)


def caller_scope(authorization: str) -> str:
    return hashlib.sha256(authorization.encode()).hexdigest()


def request_hash(method: str, path: str, body: bytes) -> str:
    """The same JSON with other whitespace or key order is the same request."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), canonical])).hexdigest()


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    headers: list[list[str]]
    body: bytes


@dataclass(frozen=True, slots=True)
class InUse:
    pass


@dataclass(frozen=True, slots=True)
class Reused:
    pass


Outcome = Claimed | Stored | InUse | Reused


async def claim(
    session: AsyncSession,
    *,
    caller: str,
    key: str,
    fingerprint: str,
    method: str,
    path: str,
    retention: timedelta,
    now: datetime | None = None,
) -> Outcome:
    """Take the key for this request, or say what an earlier request with it left."""
    now = now or datetime.now(UTC)
    claimed_id = await session.scalar(
        insert(IdempotencyKey)
        .values(
            caller=caller,
            key=key,
            request_hash=fingerprint,
            method=method,
            path=path,
            locked_until=now + IN_FLIGHT_LEASE,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["caller", "key"])
        .returning(IdempotencyKey.id)
    )
    if claimed_id is not None:
        return Claimed(claimed_id)
    row = await session.scalar(
        select(IdempotencyKey)
        .where(IdempotencyKey.caller == caller, IdempotencyKey.key == key)
        .with_for_update()
    )
    if row is None:  # pruned in between: the key is free again
        return await claim(
            session,
            caller=caller,
            key=key,
            fingerprint=fingerprint,
            method=method,
            path=path,
            retention=retention,
            now=now,
        )
    if row.created_at < now - retention:  # past retention, not pruned yet: a new key
        row.request_hash, row.method, row.path, row.created_at = fingerprint, method, path, now
        row.response_status = row.response_headers = row.response_body = None
        row.locked_until = now + IN_FLIGHT_LEASE
        return Claimed(row.id)
    if row.request_hash != fingerprint:
        return Reused()
    if row.response_status is not None:
        return Stored(row.response_status, row.response_headers or [], row.response_body or b"")
    if row.locked_until is not None and row.locked_until > now:
        return InUse()
    row.locked_until = now + IN_FLIGHT_LEASE  # the first request died: this one takes over
    return Claimed(row.id)


async def record(session: AsyncSession, claimed: Claimed, answer: Stored) -> None:
    row = await session.get_one(IdempotencyKey, claimed.id)
    row.response_status = answer.status
    row.response_headers = answer.headers
    row.response_body = answer.body
    row.locked_until = None


CLAIM_STATE = "idempotency_claim"  # request.state: the key this request holds, if any


async def store_with_work(
    session: AsyncSession, request: Request, status: int, body: bytes, media_type: str
) -> Response:
    """The route's answer, stored in the route's own transaction when the request holds an
    Idempotency-Key, and the response that sends exactly those bytes."""
    claimed_id: int | None = getattr(request.state, CLAIM_STATE, None)
    if claimed_id is not None:
        answer = Stored(status, [["content-type", media_type]], body)
        await record(session, Claimed(claimed_id), answer)
    return Response(body, status_code=status, media_type=media_type)


async def release(session: AsyncSession, claimed: Claimed) -> None:
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.id == claimed.id, IdempotencyKey.response_status.is_(None)
        )
    )


async def prune(
    sessionmaker: async_sessionmaker[AsyncSession], retention: timedelta, now: datetime
) -> int:
    """Delete keys older than the retention period, in batches; returns how many."""
    cutoff = now - retention
    total = 0
    while True:
        async with sessionmaker() as session, session.begin():
            batch = (
                select(IdempotencyKey.id)
                .where(IdempotencyKey.created_at < cutoff)
                .limit(PRUNE_BATCH)
                .scalar_subquery()
            )
            result = await session.execute(
                delete(IdempotencyKey).where(IdempotencyKey.id.in_(batch))
            )
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


def idempotent_routes(routes: Sequence[BaseRoute]) -> list[APIRoute]:
    """The POSTs of the public API that change state (the webhook intake has its event id)."""
    return [
        context.route
        for context in iter_route_contexts(routes)
        if isinstance(context.route, APIRoute)
        and "POST" in (context.route.methods or ())
        and context.route.path.startswith("/v1/")
        and context.route.operation_id not in READ_ONLY_OPERATIONS
    ]


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: list[APIRoute] | None = None

    def _applies(self, scope: Scope) -> bool:
        if self._routes is None:
            self._routes = idempotent_routes(scope["app"].routes)
        return any(route.matches(scope)[0] == Match.FULL for route in self._routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        authorization = headers.get("authorization")
        # Without credentials the route answers 401 whatever the key.
        if key is None or not authorization or not self._applies(scope):
            await self.app(scope, receive, send)
            return
        if not valid_key(key):
            await problem_response(
                400,
                "invalid_idempotency_key",
                "Invalid Idempotency-Key",
                "send 1 to 255 printable ASCII characters, e.g. a UUID",
            )(scope, receive, send)
            return
        body = await _read_body(receive)
        query = scope["query_string"].decode("latin-1")
        path = scope["path"] + (f"?{query}" if query else "")
        res = scope["app"].state.resources
        retention = timedelta(hours=res.settings.idempotency_retention_hours)
        async with res.sessionmaker() as session, session.begin():
            outcome = await claim(
                session,
                caller=caller_scope(authorization),
                key=key,
                fingerprint=request_hash("POST", path, body),
                method="POST",
                path=path,
                retention=retention,
            )
        match outcome:
            case Reused():
                answer: Response = problem_response(
                    422,
                    "idempotency_key_reused",
                    "Idempotency-Key already used for another request",
                    "this key was sent with another method, path or body; use a new key",
                )
            case InUse():
                answer = problem_response(
                    409,
                    "idempotency_key_in_use",
                    "A request with this Idempotency-Key is in progress",
                    "retry after the first request has finished",
                    retry_after=IN_USE_RETRY_AFTER_S,
                )
            case Stored():
                answer = Response(outcome.body, status_code=outcome.status)
                answer.raw_headers = [
                    *((k.encode("latin-1"), v.encode("latin-1")) for k, v in outcome.headers),
                    (b"content-length", str(len(outcome.body)).encode()),
                    (REPLAYED_HEADER.lower().encode(), b"true"),
                ]
            case Claimed():
                await self._run(scope, body, receive, send, res.sessionmaker, outcome)
                return
        await answer(scope, receive, send)

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        sessionmaker: async_sessionmaker[AsyncSession],
        claimed: Claimed,
    ) -> None:
        given = False

        async def receive_body() -> Message:
            nonlocal given
            if given:
                return await receive()
            given = True
            return {"type": "http.request", "body": body, "more_body": False}

        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        scope.setdefault("state", {})[CLAIM_STATE] = claimed.id
        try:
            await self.app(scope, receive_body, hold)
        except BaseException:
            await _release_quietly(sessionmaker, claimed)
            raise
        answer = _answer(messages)
        if answer is None or answer.status >= 500 or answer.status in NOT_STORED:
            await _release_quietly(sessionmaker, claimed)
        else:
            try:
                await _record_sent(sessionmaker, claimed, answer)
            except Exception:
                # The work is done and committed: its answer is still the truth to send.
                logger.exception("could not store the answer to an idempotent request")
        for message in messages:
            await send(message)


async def _record_sent(
    sessionmaker: async_sessionmaker[AsyncSession], claimed: Claimed, answer: Stored
) -> None:
    """The answer as it is sent (the same bytes a route stored with its work, if it did)."""
    async with sessionmaker() as session, session.begin():
        await record(session, claimed, answer)


async def _release_quietly(
    sessionmaker: async_sessionmaker[AsyncSession], claimed: Claimed
) -> None:
    """Free the key for a retry; if even that fails, its lease frees it."""
    try:
        async with sessionmaker() as session, session.begin():
            await release(session, claimed)
    except Exception:
        logger.warning("could not free an idempotency key", exc_info=True)


def _answer(messages: list[Message]) -> Stored | None:
    start = next((m for m in messages if m["type"] == "http.response.start"), None)
    if start is None:
        return None
    headers = [
        [name.decode("latin-1"), value.decode("latin-1")]
        for name, value in start.get("headers", [])
        if name.decode("latin-1").lower() in REPLAYED_HEADERS
    ]
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return Stored(start["status"], headers, body)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def document_idempotency(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Declare the header, the replay marker and the key's own errors on each operation."""
    ids = {route.operation_id for route in idempotent_routes(routes)}
    for path_item in schema.get("paths", {}).values():
        operation = path_item.get("post")
        if operation is None or operation.get("operationId") not in ids:
            continue
        operation.setdefault("parameters", []).append(
            {
                "name": HEADER,
                "in": "header",
                "required": False,
                "description": (
                    "A unique value per intended action (a UUID). Sending the same request "
                    "again with it returns the first answer, marked `Idempotent-Replayed: "
                    "true`, instead of acting twice. Kept at least 24 hours."
                ),
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[ -~]{1,255}$",
                },
            }
        )
        responses = operation.setdefault("responses", {})
        for status, response in responses.items():
            if status.startswith("2"):
                response.setdefault("headers", {})[REPLAYED_HEADER] = {
                    "description": "`true` when this is the stored answer to an earlier request.",
                    "schema": {"type": "string", "enum": ["true"]},
                }
        for status, code, title in (
            (400, "invalid_idempotency_key", "Invalid Idempotency-Key"),
            (409, "idempotency_key_in_use", "A request with this Idempotency-Key is in progress"),
            (422, "idempotency_key_reused", "Idempotency-Key already used for another request"),
        ):
            declared = responses.get(str(status))
            if declared is None:
                responses[str(status)] = declared = problem_declaration(title, status)
            else:
                declared["description"] += f"; or `{code}`: {title}"
            if status == 409:
                declared.setdefault("headers", {}).update(RETRY_AFTER_HEADER)
    return schema
