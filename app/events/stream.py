"""The SSE stream of one connection: its own Redis subscription to the shop's channel."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import orjson
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEEP_ALIVE_S = 15.0
# Below the Redis client's 2 s socket timeout, so an idle subscription never reads as a failure.
POLL_S = 1.0
# A stream ends after this long; EventSource reconnects (after RETRY_MS) to any API process.
MAX_AGE_S = 30 * 60.0
RETRY_MS = 3000
CLOSE_TIMEOUT_S = 1.0
RESYNC = "stream.resync"


def sse_frame(event_id: str, event_type: str, data: bytes) -> str:
    """One SSE message; `data` is single-line JSON, so one `data:` line suffices."""
    return f"id: {event_id}\nevent: {event_type}\ndata: {data.decode()}\n\n"


def sse_comment(text: str) -> str:
    return f": {text}\n\n"


def frame_from_message(data: bytes) -> str | None:
    """The SSE frame for a message published by `publish_deferred`; None if it is malformed."""
    try:
        message = orjson.loads(data)
        event = message["event"]
        return sse_frame(str(message["id"]), str(event["type"]), orjson.dumps(event))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        logger.warning("dropping a malformed event message: %r", exc)
        return None


async def event_stream(
    pubsub: PubSub,
    is_disconnected: Callable[[], Awaitable[bool]],
    *,
    resync: bool = False,
    keep_alive_s: float = KEEP_ALIVE_S,  # seconds
    max_age_s: float = MAX_AGE_S,  # seconds
) -> AsyncIterator[str]:
    """Relay messages from an already-subscribed `pubsub` until the client leaves, the stream
    reaches `max_age_s`, Redis fails, or the server cancels it; always closes the subscription."""
    try:
        yield f"retry: {RETRY_MS}\n" + sse_comment("connected")
        if resync:
            # Events are live-only: a reconnecting client may have missed some, so it refetches.
            yield sse_frame("resync", RESYNC, orjson.dumps({"type": RESYNC}))
        started = last_sent = time.monotonic()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=POLL_S)
            now = time.monotonic()
            if message is not None and message["type"] == "message":
                frame = frame_from_message(message["data"])
                if frame is not None:
                    yield frame
                    last_sent = now
                continue
            if now - started >= max_age_s or await is_disconnected():
                return
            if now - last_sent >= keep_alive_s:
                yield sse_comment("keep-alive")
                last_sent = now
    except (OSError, RedisError) as exc:
        # Redis went away (or the app closed it on shutdown): end; the client reconnects.
        logger.info("event stream ended: %r", exc)
    finally:
        # Shielded: a disconnect cancels this generator, and the connection must still go back.
        with anyio.move_on_after(CLOSE_TIMEOUT_S, shield=True):
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
