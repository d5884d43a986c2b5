"""End to end, automatic mode: paid webhook received -> credit committed, at fixed rates.

    uv run python -m bench.e2e                         # 200 orders/s for 60 s, then a ramp
    uv run python -m bench.e2e --rate 100 --seconds 20 --ramp ""   # one short step
    uv run python -m bench.e2e --workers 2 --api-workers 1

Each order arrives as `orders/create` then, `--paid-after` seconds later, `orders/paid`, sent
open loop (each request at its due time, whatever the answers before it) over keep-alive
connections to `cashback api`, with `cashback worker` processes handling them. Latency of an
order: the moment its `processed` status change reaches the shop's live-event channel (the
service publishes it right after the credit's commit) minus the paid event's `received_at` in
PostgreSQL. A step passes when p95 <= 1 s and its orders are all credited within a few seconds
of its end (no growing backlog). The ramp runs steps of rising rate until one fails; the highest
passing rate is reported. Also checked: every order credited exactly once.

Database `cashback_bench_e2e` (re-created), Redis DB 13, queue `cashback:bench-e2e`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis

from app.events.publish import channel
from app.shopify.payloads import sign
from bench import rawhttp
from bench.cpu import TICK_S, processes
from bench.drain import REPO, BenchShop, Env, check_credits, create_shop, setup
from bench.payloads import API_VERSION, WEBHOOK_PATH, OrderFactory
from bench.pooler import PgBouncer
from bench.procs import Process, Processes, cashback_command
from bench.stats import Figure, percentile, table

ORDER_BASE = 9_000_000_000_000
P95_LIMIT_S = 1.0
SETTLE_S = 8.0  # after a step, how long its last orders may take to be credited


@dataclass
class Step:
    rate: float
    seconds: float
    first_id: int
    sent_ok: int = 0
    sent_failed: int = 0
    send_lag_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    missing: int = 0
    backlog_at_end: int = 0
    worker_cpu_s: float = 0.0
    api_cpu_s: float = 0.0

    @property
    def orders(self) -> int:
        return round(self.rate * self.seconds)

    def pct(self, p: float) -> float:
        return percentile(self.latencies_s, p)

    @property
    def passed(self) -> bool:
        return (
            self.missing == 0
            and self.sent_failed == 0
            and len(self.latencies_s) == self.orders
            and self.pct(95) <= P95_LIMIT_S
        )


def requests_for(
    factory: OrderFactory, shop: BenchShop, order_id: int, host: str
) -> tuple[bytes, bytes]:
    """The raw `orders/create` and `orders/paid` requests of one order."""
    paid = factory.delivery(order_id).body
    created = orjson.loads(paid)
    created["financial_status"] = "pending"
    create = orjson.dumps(created)
    raws = []
    for topic, body in (("orders/create", create), ("orders/paid", paid)):
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": sign(body, shop.webhook_secret),
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-Api-Version": API_VERSION,
            "X-Shopify-Event-Id": f"{topic}-{order_id}",
        }
        raws.append(rawhttp.post_request(host, WEBHOOK_PATH, headers, body))
    return raws[0], raws[1]


class Listener:
    """When each order's `processed` event reached the shop's channel (Unix seconds)."""

    def __init__(self, redis: Redis, name: str) -> None:
        self.redis = redis
        self.name = name
        self.seen: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.name)
        self.task = asyncio.create_task(self._run(pubsub))

    async def _run(self, pubsub: Any) -> None:
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            at = time.time()
            event = orjson.loads(message["data"]).get("event", {})
            if event.get("to_status") == "processed":
                self.seen.setdefault(str(event.get("external_id")), at)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


def cpu_of(pgids: set[int]) -> float:
    return sum(p.ticks for p in processes().values() if p.pgrp in pgids) * TICK_S


async def run_step(
    step: Step,
    client: rawhttp.Client,
    factory: OrderFactory,
    shop: BenchShop,
    host: str,
    paid_after_s: float,
    conn: asyncpg.Connection,
    listener: Listener,
    worker_pgids: set[int],
    api_pgids: set[int],
) -> None:
    ids = [step.first_id + n for n in range(step.orders)]
    schedule: list[tuple[float, bytes]] = []
    for n, order_id in enumerate(ids):
        create, paid = requests_for(factory, shop, order_id, host)
        schedule += [(n / step.rate, create), (n / step.rate + paid_after_s, paid)]
    schedule.sort(key=lambda item: item[0])

    async def post(raw: bytes) -> None:
        try:
            status, _ = await client.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = 0
        if status == 200:
            step.sent_ok += 1
        else:
            step.sent_failed += 1

    worker0, api0 = cpu_of(worker_pgids), cpu_of(api_pgids)
    tasks = []
    start = time.perf_counter() + 0.05
    for offset, raw in schedule:
        lag = time.perf_counter() - (start + offset)
        if lag < 0:
            await asyncio.sleep(-lag)
        else:
            step.send_lag_s = max(step.send_lag_s, lag)
        tasks.append(asyncio.create_task(post(raw)))
    await asyncio.gather(*tasks)
    external = [str(i) for i in ids]
    step.backlog_at_end = sum(1 for i in external if i not in listener.seen)
    deadline = time.perf_counter() + SETTLE_S
    pending = [i for i in external if i not in listener.seen]
    while pending and time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        pending = [i for i in pending if i not in listener.seen]
    step.worker_cpu_s = cpu_of(worker_pgids) - worker0
    step.api_cpu_s = cpu_of(api_pgids) - api0
    rows = await conn.fetch(
        "SELECT convert_from(body, 'UTF8')::jsonb->>'id' AS id, "
        "extract(epoch FROM received_at)::float8 AS at FROM webhook_events "
        "WHERE shop_id = $1 AND topic = 'orders/paid' AND event_key = ANY($2::text[])",
        shop.id,
        [f"orders/paid-{i}" for i in ids],
    )
    received = {r["id"]: r["at"] for r in rows}
    for key in external:
        if key in listener.seen and key in received:
            step.latencies_s.append(listener.seen[key] - received[key])
        else:
            step.missing += 1


async def wait_ready(base_url: str, api: Process) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        for _ in range(300):
            if not api.running:
                raise SystemExit(f"the API exited:\n{api.log_tail()}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit("the API is not ready after 60 s")


async def run(args: argparse.Namespace, env: Env, shop: BenchShop, procs: Processes) -> list[Step]:
    port = args.port
    host = f"127.0.0.1:{port}"
    service_env = env.service_env()
    argv = [*cashback_command(), "api", "--host", "127.0.0.1", "--port", str(port)]
    api = procs.start(
        "api",
        [*argv, "--workers", str(args.api_workers)],
        service_env,
        args.logdir / "e2e-api.log",
        REPO,
    )
    workers = [
        procs.start(
            f"worker{i}",
            [*cashback_command(), "worker"],
            service_env,
            args.logdir / f"e2e-worker{i}.log",
            REPO,
        )
        for i in range(args.workers)
    ]
    await wait_ready(f"http://{host}", api)
    redis = Redis.from_url(env.redis)
    listener = Listener(redis, channel(env.queue, shop.id))
    await listener.start()
    conn = await asyncpg.connect(env.dsn)
    client = rawhttp.Client("127.0.0.1", port, args.connections)
    factory = OrderFactory(shop.webhook_secret, args.customers)
    worker_pgids = {w.pgid for w in workers}
    steps: list[Step] = []
    try:
        warm = Step(rate=20, seconds=2, first_id=ORDER_BASE - 1000)
        await run_step(
            warm,
            client,
            factory,
            shop,
            host,
            args.paid_after,
            conn,
            listener,
            worker_pgids,
            {api.pgid},
        )
        plan = [(args.rate, args.seconds)]
        plan += [(float(r), args.ramp_seconds) for r in args.ramp.split(",") if r.strip()]
        next_id = ORDER_BASE
        for rate, seconds in plan:
            step = Step(rate=rate, seconds=seconds, first_id=next_id)
            next_id += step.orders + 1
            await run_step(
                step,
                client,
                factory,
                shop,
                host,
                args.paid_after,
                conn,
                listener,
                worker_pgids,
                {api.pgid},
            )
            steps.append(step)
            print(
                f"{rate:.0f}/s: p50 {step.pct(50):.3f} p95 {step.pct(95):.3f} "
                f"p99 {step.pct(99):.3f} s, missing {step.missing}, failed sends "
                f"{step.sent_failed}, backlog at end {step.backlog_at_end}",
                file=sys.stderr,
                flush=True,
            )
            if len(steps) > 1 and not step.passed:
                break  # the ramp found its limit
        problems = await check_credits(
            conn,
            shop.id,
            await conn.fetchval("SELECT count(*) FROM orders WHERE shop_id = $1", shop.id),
        )
        if problems:
            print("PROBLEMS: " + "; ".join(problems), file=sys.stderr)
    finally:
        listener.stop()
        await client.close()
        await conn.close()
        await redis.aclose()
        for w in workers:
            w.stop(timeout=15)
        api.stop(timeout=15)
    return steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="paid orders/s, first step")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--ramp", default="300,400,500,700", help="rates after the first step")
    parser.add_argument("--ramp-seconds", type=float, default=15.0)
    parser.add_argument("--paid-after", type=float, default=0.2, help="seconds create -> paid")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--logdir", type=Path, default=Path("/tmp"))
    parser.add_argument("--pgbouncer", action="store_true", help="API and workers through one")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-e2e.json")
    args = parser.parse_args(argv)
    env = Env(
        database="cashback_bench_e2e", redis="redis://127.0.0.1:6379/13", queue="cashback:bench-e2e"
    )
    setup(env)
    shop = create_shop(env, "bench-e2e.myshopify.com")
    procs = Processes()
    bouncer = None
    if args.pgbouncer:
        bouncer = PgBouncer.start(env.sqlalchemy_url, args.logdir / "e2e-pgbouncer")
        env.extra.update(bouncer.service_env(env.database))
    try:
        steps = asyncio.run(run(args, env, shop, procs))
    finally:
        procs.stop_all()
        if bouncer is not None:
            bouncer.stop()
    figures = []
    for step in steps:
        s = f"end to end at {step.rate:.0f} paid orders/s for {step.seconds:.0f} s"
        orders = max(len(step.latencies_s), 1)
        figures += [
            Figure(s, "paid -> credit committed p50", 1000 * step.pct(50), "ms"),
            Figure(s, "paid -> credit committed p95", 1000 * step.pct(95), "ms"),
            Figure(s, "paid -> credit committed p99", 1000 * step.pct(99), "ms"),
            Figure(
                s,
                "orders not credited in time / failed sends",
                f"{step.missing} / {step.sent_failed}",
            ),
            Figure(s, "orders not yet credited when sending ended", step.backlog_at_end),
            Figure(s, "worker CPU per order", 1000 * step.worker_cpu_s / orders, "ms"),
            Figure(s, "API CPU per order (2 requests)", 1000 * step.api_cpu_s / orders, "ms"),
        ]
    passing = [s.rate for s in steps if s.passed]
    figures.append(
        Figure(
            "end to end",
            "highest sustained rate with p95 <= 1 s",
            max(passing) if passing else math.nan,
            "paid orders/s",
        )
    )
    print(table(figures))
    args.out.write_text(
        json.dumps(
            {
                "steps": [
                    {
                        "rate": s.rate,
                        "seconds": s.seconds,
                        "p50_s": s.pct(50),
                        "p95_s": s.pct(95),
                        "p99_s": s.pct(99),
                        "missing": s.missing,
                        "failed_sends": s.sent_failed,
                        "backlog_at_end": s.backlog_at_end,
                        "send_lag_s": s.send_lag_s,
                        "worker_cpu_s": s.worker_cpu_s,
                        "api_cpu_s": s.api_cpu_s,
                        "passed": s.passed,
                    }
                    for s in steps
                ],
                "workers": args.workers,
                "api_workers": args.api_workers,
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
