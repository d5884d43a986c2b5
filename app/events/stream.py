"""The SSE stream of one connection: its own Redis subscription to the shop's channel.

`sse-starlette` writes the SSE framing, sends the keep-alive comment, and cancels the stream
when the client disconnects or the server shuts down. Kept here, as the library has no word for
them: the subscription's polling (a Redis read must not outlast the client's socket timeout),
the maximum age after which the client reconnects elsewhere, the resync event for a reconnect,
and closing the subscription however the stream ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator

import anyio
import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse, ServerSentEvent

logger = logging.getLogger(__name__)

KEEP_ALIVE_S = 15.0
# Below the Redis client's 2 s socket timeout, so an idle subscription never reads as a failure.
POLL_S = 1.0
# A stream ends after this long; EventSource reconnects (after RETRY_MS) to any API process.
MAX_AGE_S = 30 * 60.0
RETRY_MS = 3000
CLOSE_TIMEOUT_S = 1.0
RESYNC = "stream.resync"
SEP = "\n"  # each line of a message ends with LF alone


def sse_event(event_id: str, event_type: str, data: bytes) -> ServerSentEvent:
    """One SSE message; `data` is single-line JSON, so one `data:` line suffices."""
    return ServerSentEvent(data.decode(), id=event_id, event=event_type, sep=SEP)


def sse_comment(text: str, *, retry_ms: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(comment=text, retry=retry_ms, sep=SEP)


def keep_alive() -> ServerSentEvent:
    return sse_comment("keep-alive")


def resync_event() -> ServerSentEvent:
    return sse_event("resync", RESYNC, orjson.dumps({"type": RESYNC}))


def event_from_message(data: bytes) -> ServerSentEvent | None:
    """The SSE message for one published by `publish`; None if it is malformed."""
    try:
        message = orjson.loads(data)
        event = message["event"]
        return sse_event(str(message["id"]), str(event["type"]), orjson.dumps(event))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        logger.warning("dropping a malformed event message: %r", exc)
        return None


def event_response(pubsub: PubSub, *, resync: bool) -> EventSourceResponse:
    """The response streaming an already-subscribed `pubsub`."""
    return EventSourceResponse(
        event_stream(pubsub, resync=resync, max_age_s=MAX_AGE_S),
        headers={"Cache-Control": "no-cache"},
        ping=KEEP_ALIVE_S,
        ping_message_factory=keep_alive,
        sep=SEP,
    )


async def event_stream(
    pubsub: PubSub,
    *,
    resync: bool = False,
    max_age_s: float = MAX_AGE_S,  # seconds
) -> AsyncGenerator[ServerSentEvent, None]:
    """Relay messages from an already-subscribed `pubsub` until the stream reaches `max_age_s`,
    Redis fails, or it is closed (the client left, the server shuts down); always closes the
    subscription."""
    try:
        yield sse_comment("connected", retry_ms=RETRY_MS)
        if resync:
            # Events are live-only: a reconnecting client may have missed some, so it refetches.
            yield resync_event()
        ends = time.monotonic() + max_age_s
        while time.monotonic() < ends:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
            if message is not None and message["type"] == "message":
                event = event_from_message(message["data"])
                if event is not None:
                    yield event
    except (OSError, RedisError) as exc:
        # Redis went away (or the app closed it on shutdown): end; the client reconnects.
        logger.info("event stream ended: %r", exc)
    finally:
        # Shielded: a disconnect cancels this generator, and the connection must still go back.
        with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
