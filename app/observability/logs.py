"""Logging: JSON lines in production, readable text in development; every line carries the
bound context (request id, shop, order) and secrets or personal data in extras are redacted.

The code logs through the standard library (`logging.getLogger(__name__)`), and so do the
libraries it uses; structlog's `ProcessorFormatter` turns each record into one line: the
record's extras (`extra=`), the context bound to the request or job (`app.core.context`), the
level, logger and time, all redacted, then rendered as JSON or as text.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog.stdlib import ExtraAdder, ProcessorFormatter
from structlog.types import EventDict, Processor, WrappedLogger

from app.config import Environment, Settings
from app.core.context import bound_fields

REDACTED = "[redacted]"
SENSITIVE_KEY = re.compile(
    r"authorization|api_?key|token|secret|password|passwd|email|cookie|phone|signature|hmac",
    re.IGNORECASE,
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


def _bound_context(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The fields bound to the current request or job; the record's own extras win."""
    return {**bound_fields(), **event}


def _redacted(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    kept = ("_record", "_from_structlog", "exc_info")  # not data: never rewritten
    internal = {key: event.pop(key) for key in kept if key in event}
    return {**redact(event), **internal}


def _timestamp(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    record: logging.LogRecord = event["_record"]
    event["ts"] = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
    return event


def _message(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    event["message"] = event.pop("event")
    return event


# What every record goes through before it is rendered.
_PRE_CHAIN: list[Processor] = [
    ExtraAdder(),
    _bound_context,
    _redacted,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    _timestamp,
]


def _dumps(line: Any, **_: Any) -> str:
    return json.dumps(line, default=str, ensure_ascii=False)


class JsonFormatter(ProcessorFormatter):
    """One JSON object per line: ts, level, logger, message, then the fields."""

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=_PRE_CHAIN,
            processors=[
                ProcessorFormatter.remove_processors_meta,
                _message,
                _ordered,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(serializer=_dumps),
            ],
        )


def _ordered(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    head = {key: event.pop(key) for key in ("ts", "level", "logger", "message") if key in event}
    return {**head, **event}


class TextFormatter(ProcessorFormatter):
    """`time LEVEL logger: message [field=value …]`, a traceback below."""

    def __init__(self) -> None:
        super().__init__(
            foreign_pre_chain=_PRE_CHAIN,
            processors=[_text],
        )


def _text(_: WrappedLogger, __: str, event: EventDict) -> str:
    record: logging.LogRecord = event.pop("_record")
    event.pop("_from_structlog", None)
    for key in ("ts", "level", "logger"):
        event.pop(key, None)
    message = event.pop("event")
    exc_info = event.pop("exc_info", None)  # ProcessorFormatter moves it off the record
    when = datetime.fromtimestamp(record.created, UTC).isoformat(sep=" ", timespec="milliseconds")
    line = f"{when} {record.levelname:<7} {record.name}: {message}"
    if event:
        line += " [" + " ".join(f"{key}={value}" for key, value in event.items()) + "]"
    if isinstance(exc_info, tuple):
        line += "\n" + logging.Formatter().formatException(exc_info)
    return line


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
