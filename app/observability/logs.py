"""Logging: JSON lines in production, readable text in development; every line carries the
bound context (request id, shop, order) and secrets or personal data in extras are redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

from app.config import Environment, Settings
from app.core.context import bound_fields

REDACTED = "[redacted]"
SENSITIVE_KEY = re.compile(
    r"authorization|api_?key|token|secret|password|passwd|email|cookie|phone|signature|hmac",
    re.IGNORECASE,
)
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


def redact(value: Any) -> Any:
    """`value` with the values of sensitive keys replaced, at any depth."""
    if isinstance(value, Mapping):
        return {
            key: REDACTED if SENSITIVE_KEY.search(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def structured_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The bound context and the record's extras, redacted."""
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS}
    fields: dict[str, Any] = redact({**bound_fields(), **extras})
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **structured_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = structured_fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        head, sep, tail = text.partition("\n")  # keep a traceback below the fields
        return f"{head} [{pairs}]{sep}{tail}"


def wants_json(settings: Settings) -> bool:
    if settings.log_format == "auto":
        return settings.env == Environment.production
    return settings.log_format == "json"


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Replace the root handlers with one that writes `settings.log_format` to stderr."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if wants_json(settings) else TextFormatter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    return handler
