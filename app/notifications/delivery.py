"""Standard Webhooks on the wire: the signed request, and what the receiver's answer means.

https://www.standardwebhooks.com: `webhook-id` stays the same across retries of one message so
the receiver can drop repeats; the signature covers the id, the timestamp and the raw body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import httpx
import orjson

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's marker, not a secret
ERROR_EXCERPT_BYTES = 300
# Client errors that say "not now" rather than "never".
_RETRYABLE_CLIENT_ERRORS = frozenset({408, 429})


class Outcome(StrEnum):
    delivered = "delivered"
    retry = "retry"  # server error, throttled, timed out, unreachable
    rejected = "rejected"  # a 4xx the same request will get again


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    error: str | None = None


def webhook_id_for(message_id: int) -> str:
    return f"msg_{message_id}"


def render_body(event_type: str, occurred_at: datetime, payload: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {"type": event_type, "timestamp": occurred_at, "data": payload}, option=orjson.OPT_UTC_Z
    )


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def classify(status_code: int) -> Outcome:
    if 200 <= status_code < 300:
        return Outcome.delivered
    if 400 <= status_code < 500 and status_code not in _RETRYABLE_CLIENT_ERRORS:
        return Outcome.rejected
    return Outcome.retry


async def post(
    http: httpx.AsyncClient, url: str, *, secret: str, webhook_id: str, body: bytes
) -> Result:
    """POST one signed message. Never raises for the receiver's failures: they are outcomes."""
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }
    try:
        async with http.stream("POST", url, content=body, headers=headers) as response:
            outcome = classify(response.status_code)
            if outcome is Outcome.delivered:
                return Result(outcome)
            excerpt = await _excerpt(response)
    except httpx.HTTPError as exc:
        return Result(Outcome.retry, f"{type(exc).__name__}: {exc}".rstrip(": "))
    return Result(outcome, f"HTTP {response.status_code}: {excerpt}".rstrip(": "))


async def _excerpt(response: httpx.Response) -> str:
    """The start of the receiver's answer, for a person to read; never the whole of it."""
    received = bytearray()
    async for chunk in response.aiter_bytes():
        received += chunk
        if len(received) >= ERROR_EXCERPT_BYTES:
            break
    return received[:ERROR_EXCERPT_BYTES].decode(errors="replace").strip()
