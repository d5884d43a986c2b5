"""Python load generator: the closed-loop fallback when `wrk` is not installed, and the
open-loop sender of the intake latency runs (`--rate`).

One process runs `--connections` keep-alive HTTP/1.1 connections on asyncio (uvloop when
present) over raw sockets. Closed loop (like wrk): each connection sends the next pre-signed
body as soon as the previous answer is in. Open loop (`--rate R`): request i is due at
start + i/R whatever the answers before it, sent on the first free connection; its latency
counts from its due time, so waiting for a connection is part of it and a stall of the server
shows in the tail instead of slowing the sender. The parent starts several of these processes,
all starting at `--start-at` (a wall-clock time) so that loading the pool is not measured, and
reads the JSON each one writes to `--out`. Answers count as accepted when they are 2xx and
their body says "accepted" (the parent checks each was stored).

    python -m bench.loadgen --host 127.0.0.1 --port 8000 --domain d --pool f --out o.json
    python -m bench.loadgen … --rate 2000 --duration 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.payloads import API_VERSION, TOPIC, WEBHOOK_PATH, read_pool
from bench.rawhttp import Client, read_response

OPEN_LOOP_WAIT_S = 10.0  # after the last due time, how long the answers still may take


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)
    accepted: int = 0
    non2xx: int = 0
    errors: int = 0
    max_lag_s: float = 0.0  # open loop: the sender behind its schedule

    def answer(self, status: int, body: bytes, latency_s: float) -> None:
        self.latencies_s.append(latency_s)
        if not 200 <= status < 300:
            self.non2xx += 1
        elif b'"accepted"' in body:
            self.accepted += 1


def with_event_id(head: bytes, body: bytes, event_id: bytes) -> bytes:
    return b"".join(
        (
            head,
            b"X-Shopify-Event-Id: ",
            event_id,
            b"\r\nX-Shopify-Webhook-Id: ",
            event_id,
            b"\r\n\r\n",
            body,
        )
    )


def request_heads(
    host: str, port: int, domain: str, pool: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """(head without the event-id headers and the blank line, body) for each pool entry."""
    heads: list[tuple[bytes, bytes]] = []
    for signature, body in pool:
        head = (
            f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Shopify-Topic: {TOPIC}\r\n"
            f"X-Shopify-Shop-Domain: {domain}\r\n"
            f"X-Shopify-Api-Version: {API_VERSION}\r\n"
            f"X-Shopify-Hmac-Sha256: {signature.decode()}\r\n"
        ).encode()
        heads.append((head, body))
    return heads


async def connection(
    host: str,
    port: int,
    requests: list[tuple[bytes, bytes]],
    label: str,
    start: int,
    deadline: float,
    tally: Tally,
) -> int:
    """Send requests back to back until `deadline`; returns how many were sent."""
    sent = 0
    cursor = start
    while time.perf_counter() < deadline:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            tally.errors += 1
            await asyncio.sleep(0.05)
            continue
        try:
            while time.perf_counter() < deadline:
                head, body = requests[cursor % len(requests)]
                cursor += 1
                sent += 1
                began = time.perf_counter()
                writer.write(with_event_id(head, body, f"{label}-{sent}".encode()))
                status, answer = await read_response(reader)
                tally.answer(status, answer, time.perf_counter() - began)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
        finally:
            writer.close()
    return sent


async def open_loop(
    args: argparse.Namespace, requests: list[tuple[bytes, bytes]], tally: Tally
) -> int:
    """Request i due at start + i/rate; returns how many were sent."""
    client = Client(args.host, args.port, args.connections)
    total: int = round(args.rate * args.duration)

    async def one(i: int, due: float) -> None:
        head, body = requests[(args.offset + i) % len(requests)]
        raw = with_event_id(head, body, f"{args.label}-{i}".encode())
        try:
            status, answer = await client.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            tally.errors += 1
            tally.latencies_s.append(float("inf"))
            return
        tally.answer(status, answer, time.perf_counter() - due)

    tasks = []
    start = time.perf_counter()
    i = 0
    while i < total:
        now = time.perf_counter()
        if start + i / args.rate <= now:
            tally.max_lag_s = max(tally.max_lag_s, now - (start + i / args.rate))
        while i < total and start + i / args.rate <= now:  # every request due by now
            tasks.append(asyncio.create_task(one(i, start + i / args.rate)))
            i += 1
        if i < total:
            await asyncio.sleep(max(start + i / args.rate - time.perf_counter(), 0.0))
    _, late = await asyncio.wait(tasks, timeout=OPEN_LOOP_WAIT_S)
    for task in late:
        task.cancel()
    tally.errors += len(late)
    tally.latencies_s += [float("inf")] * len(late)
    await client.close()
    return total


async def run(args: argparse.Namespace) -> dict[str, object]:
    pool = read_pool(Path(args.pool))
    requests = request_heads(args.host, args.port, args.domain, pool)
    delay = args.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    tally = Tally()
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    began = time.perf_counter()
    deadline = began + args.duration
    step = max(len(requests) // max(args.connections, 1), 1)
    if args.rate:
        sent = [await open_loop(args, requests, tally)]
    else:
        sent = await asyncio.gather(
            *(
                connection(
                    args.host,
                    args.port,
                    requests,
                    f"{args.label}-{n}",
                    args.offset + n * step,
                    deadline,
                    tally,
                )
                for n in range(args.connections)
            )
        )
    wall = time.perf_counter() - began
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return {
        "completed": len(tally.latencies_s) - tally.errors if args.rate else len(tally.latencies_s),
        "sent": sum(sent),
        "accepted": tally.accepted,
        "pool_size": len(requests),
        "non2xx": tally.non2xx,
        "errors": tally.errors,
        "max_lag_s": tally.max_lag_s,
        "wall_s": wall,
        "cpu_s": cpu,
        "latencies_s": tally.latencies_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--domain", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() to start at")
    parser.add_argument("--label", default="py", help="event ids are <label>-<conn>-<n>")
    parser.add_argument("--offset", type=int, default=0, help="first pool entry to send")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: requests/s (0: closed)")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(run(args))
    else:
        result = uvloop.run(run(args))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
