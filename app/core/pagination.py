"""Cursor pagination: newest first by id; the cursor is opaque to clients."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

import orjson
from fastapi import Query

from app.core.errors import InvalidCursor

LimitQuery = Annotated[int, Query(ge=1, le=200, description="Page size, 1 to 200.")]
CursorQuery = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
]


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"id": last_id})).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)["id"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("the cursor was not issued by this API") from exc
    if not isinstance(value, int):
        raise InvalidCursor("the cursor was not issued by this API")
    return value


def next_cursor(ids: list[int], limit: int) -> str | None:
    """Given the ids of a page fetched with `limit + 1` rows, the cursor of the next page."""
    return encode_cursor(ids[limit - 1]) if len(ids) > limit else None
