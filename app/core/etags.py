"""Optimistic concurrency for clients: `ETag` on reads, `If-Match` on writes, 412 when stale."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import orjson
from fastapi import Header

from app.core.errors import ProblemError


class InvalidIfMatch(ProblemError):
    status, code, title = 400, "invalid_if_match", "If-Match must be an ETag this API gave"


class VersionMismatch(ProblemError):
    # The same code as an order's 412: a client handles "changed since you read it" once.
    status, code, title = 412, "version_mismatch", "The resource changed since you read it"


def etag(tag: int | str) -> str:
    return f'"{tag}"'


def content_tag(content: Any) -> str:
    """A stable tag of JSON-able content: equal content, equal tag."""
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


def parse_if_match(value: str | None) -> str | None:
    """The opaque tag of an `If-Match` header; None when absent or `*` (any version)."""
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/")
    if len(tag) >= 2 and tag[0] == tag[-1] == '"':
        tag = tag[1:-1]
    if not tag or any(c in {'"', ","} or c.isspace() for c in tag):
        raise InvalidIfMatch(f"not an ETag of this API: {value}")
    return tag


def parse_version_if_match(value: str | None) -> int | None:
    """For resources whose ETag is their version number."""
    tag = parse_if_match(value)
    if tag is None:
        return None
    if not tag.isdigit():
        raise InvalidIfMatch(f"not an ETag of this API: {value}")
    return int(tag)


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The `ETag` as you read it; 412 `version_mismatch` if it changed since.",
    ),
]
