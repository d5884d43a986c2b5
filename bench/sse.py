"""A client of the service's live events (`GET /v1/events`, server-sent events), as the
merchant's console holds one: the moment each order's `processed` status change arrives is the
moment its credit is visible outside the service, after its commit (the service publishes the
event once the transaction that credited the order has committed).

Raw asyncio streams and HTTP/1.1 chunked framing: cheap enough per event that the bench's own
process does not compete with the service for the CPU at a thousand events a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import orjson

EVENTS_PATH = "/v1/events"
CONNECT_TIMEOUT_S = 10.0


class StreamError(RuntimeError):
    pass


def parse_frame(frame: bytes) -> tuple[str, bytes] | None:
    """(event type, data) of one SSE message; None for a comment or a message without data."""
    event, data = "message", b""
    for line in frame.split(b"\n"):
        if line.startswith(b"event:"):
            event = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
    return (event, data) if data else None


class EventStream:
    """One open `/v1/events` stream of a shop; `credited[external_id]` is the
    `time.perf_counter()` at which the order's change to `processed` arrived."""

    def __init__(self, host: str, port: int, api_key: str) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.credited: dict[str, float] = {}
        self.counts: Counter[str] = Counter()  # messages per event type
        self.error: str | None = None  # why the stream ended early
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Connect and wait for the stream's first line (the server subscribes to the shop's
        channel before answering, so no event after this returns is missed)."""
        async with asyncio.timeout(CONNECT_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self._writer = writer
            writer.write(
                (
                    f"GET {EVENTS_PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"Authorization: Bearer {self.api_key}\r\nAccept: text/event-stream\r\n\r\n"
                ).encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = head.split(b" ", 2)[1]
            if status != b"200" or b"text/event-stream" not in head.lower():
                raise StreamError(f"GET {EVENTS_PATH} answered {head[:200]!r}")
            if b"transfer-encoding: chunked" not in head.lower():
                raise StreamError(f"GET {EVENTS_PATH} is not chunked: {head[:200]!r}")
            first = await self._chunk(reader)
            if b": connected" not in first:
                raise StreamError(f"the stream did not start with ': connected': {first!r}")
        self._task = asyncio.create_task(self._read(reader))

    @staticmethod
    async def _chunk(reader: asyncio.StreamReader) -> bytes:
        size = int((await reader.readline()).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)  # and its CRLF
        if not size:
            raise asyncio.IncompleteReadError(b"", None)  # the last chunk: the stream ended
        return data[:-2]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        pending = b""
        try:
            while True:
                pending += await self._chunk(reader)
                at = time.perf_counter()
                *frames, pending = pending.split(b"\n\n")
                for frame in frames:
                    parsed = parse_frame(frame)
                    if parsed is None:
                        continue
                    event, data = parsed
                    self.counts[event] += 1
                    if event == "order.status_changed" and b'"processed"' in data:
                        message = orjson.loads(data)
                        if message.get("to_status") == "processed":
                            self.credited.setdefault(str(message["external_id"]), at)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            self.error = f"the event stream ended: {exc!r}"

    async def ended(self) -> None:
        """Wait for the server to end the stream (tests; the bench closes it itself)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
