"""Worker throughput: drain a backlog of stored paid orders with 1, then 2 worker processes.

    uv run python -m bench.drain                    # 100,000 orders, 1 then 2 processes
    uv run python -m bench.drain --orders 20000 --processes 1
    uv run python -m bench.drain --mode events --orders 3000   # one job per event (the old way)

The backlog is written straight into `webhook_events` (COPY), as the API would have stored it:
one `orders/paid` event per order, distinct orders over `--customers` customers. Then the
worker processes start and are rung (`--mode drain`: the batch drain jobs; `--mode events`: one
`handle_webhook_event` job per event). Measured from the first credit to the last: orders
credited per second, and the workers' CPU (utime + stime, from /proc) per order. Each process
count gets its own shop, so every phase starts on an equal backlog. Checks at the end that
every order is processed with exactly one ledger credit.

Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379; database `cashback_bench_drain`
is re-created at each run, Redis DB 12 holds the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis

from app import migrate
from app.core.broker import Broker, Job, create_redis
from app.inbox import service as webhook_service
from bench.cpu import TICK_S, processes
from bench.payloads import API_VERSION, OrderFactory
from bench.procs import Process, Processes, cashback_command
from bench.stats import Figure, table

REPO = Path(__file__).resolve().parent.parent
ORDER_BASE = 8_000_000_000_000
COPY_CHUNK = 10_000


@dataclass
class Env:
    postgres: str = "postgresql://postgres@127.0.0.1:5432"
    database: str = "cashback_bench_drain"
    redis: str = "redis://127.0.0.1:6379/12"
    queue: str = "cashback:bench-drain"
    log_level: str = "WARNING"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return f"{self.postgres}/{self.database}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CASHBACK_DATABASE_URL=self.sqlalchemy_url,
            CASHBACK_REDIS_URL=self.redis,
            CASHBACK_QUEUE_NAME=self.queue,
            CASHBACK_LOG_LEVEL=self.log_level,
            CASHBACK_WORKER_METRICS_PORT="0",  # several workers on one machine
        )
        env.update(self.extra)
        return env


@dataclass(frozen=True)
class BenchShop:
    id: int
    domain: str
    webhook_secret: str


async def recreate_database(env: Env) -> None:
    admin = await asyncpg.connect(f"{env.postgres}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{env.database}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{env.database}"')
    finally:
        await admin.close()


async def clear_queue(env: Env) -> None:
    redis = Redis.from_url(env.redis)
    try:
        await redis.flushdb()  # the bench's own Redis database
    finally:
        await redis.aclose()


def setup(env: Env) -> None:
    asyncio.run(recreate_database(env))
    asyncio.run(clear_queue(env))
    migrate.upgrade(env.sqlalchemy_url)


def create_shop(env: Env, domain: str) -> BenchShop:
    secret = "whsec_bench_" + secrets.token_urlsafe(18)
    argv = [*cashback_command(), "shops", "create", "--domain", domain]
    argv += ["--webhook-secret", secret, "--json"]
    done = subprocess.run(
        argv, env=env.service_env(), cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"`cashback shops create` failed:\n{done.stderr[-2000:]}")
    created = json.loads(done.stdout.strip().splitlines()[-1])
    return BenchShop(int(created["id"]), str(created["domain"]), str(created["webhook_secret"]))


async def store_backlog(
    env: Env, shop: BenchShop, orders: int, customers: int, base: int
) -> list[int]:
    """Write `orders` stored orders/paid events for the shop; returns their ids."""
    factory = OrderFactory(shop.webhook_secret, customers)
    conn = await asyncpg.connect(env.dsn)
    now = datetime.now(UTC)
    columns = ("shop_id", "topic", "event_key", "api_version", "body", "status", "received_at")
    try:
        for start in range(0, orders, COPY_CHUNK):
            records = []
            for n in range(start, min(start + COPY_CHUNK, orders)):
                delivery = factory.delivery(base + n)
                key = f"bench-{base + n}"
                records.append(
                    (shop.id, "orders/paid", key, API_VERSION, delivery.body, "received", now)
                )
            await conn.copy_records_to_table("webhook_events", records=records, columns=columns)
        await conn.execute("ANALYZE webhook_events")
        rows = await conn.fetch(
            "SELECT id FROM webhook_events WHERE shop_id = $1 AND status = 'received' ORDER BY id",
            shop.id,
        )
    finally:
        await conn.close()
    return [r["id"] for r in rows]


async def ring(env: Env, jobs: list[Job]) -> None:
    broker = Broker(create_redis(env.redis), env.queue)
    try:
        for at in range(0, len(jobs), 500):
            await broker.enqueue(jobs[at : at + 500])
    finally:
        await broker.close()


def start_workers(env: Env, procs: Processes, count: int, logdir: Path) -> list[Process]:
    return [
        procs.start(
            f"worker{i}",
            [*cashback_command(), "worker"],
            env.service_env(),
            logdir / f"worker{i}.log",
            REPO,
        )
        for i in range(count)
    ]


def group_cpu_s(pgids: set[int]) -> float:
    """CPU seconds (user + system) of every live process in the given process groups."""
    return sum(p.ticks for p in processes().values() if p.pgrp in pgids) * TICK_S


def backend_database(pid: int) -> str | None:
    """The database of a PostgreSQL backend, from its process title ("postgres: user db
    host(port) state"); None for the server's own processes."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return None
    words = title.split(": ", 2)[-1].split()
    is_backend = len(words) >= 3 and (words[2].endswith(")") or words[2] == "[local]")
    return words[1] if is_backend else None


def postgres_ticks(database: str) -> dict[int, int]:
    """CPU ticks of each PostgreSQL backend connected to `database`."""
    return {
        pid: p.ticks
        for pid, p in processes().items()
        if p.comm.startswith("postgres") and backend_database(pid) == database
    }


def postgres_cpu_s(database: str, since: dict[int, int]) -> float:
    """CPU seconds the database's backends used since the `since` snapshot (backends that
    ended in between are not counted: the pools keep theirs open)."""
    now = postgres_ticks(database)
    return sum(ticks - since.get(pid, 0) for pid, ticks in now.items()) * TICK_S


async def count_processed(conn: asyncpg.Connection, shop_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1 AND status = 'processed'", shop_id
        )
    )


async def check_credits(conn: asyncpg.Connection, shop_id: int, orders: int) -> list[str]:
    problems = []
    row = await conn.fetchrow(
        "SELECT count(*) AS orders, count(*) FILTER (WHERE status = 'processed') AS processed "
        "FROM orders WHERE shop_id = $1",
        shop_id,
    )
    if row["orders"] != orders or row["processed"] != orders:
        problems.append(f"{row['processed']} of {orders} orders processed ({row['orders']} rows)")
    doubles = await conn.fetchval(
        "SELECT count(*) FROM (SELECT order_id FROM ledger_entries WHERE shop_id = $1 "
        "AND kind = 'credit' GROUP BY order_id HAVING count(*) > 1) d",
        shop_id,
    )
    if doubles:
        problems.append(f"{doubles} orders credited more than once")
    owed = await conn.fetchval(
        "SELECT coalesce(sum(cashback_amount), 0) FROM orders WHERE shop_id = $1", shop_id
    )
    credited = await conn.fetchval(
        "SELECT coalesce(sum(amount), 0) FROM ledger_entries WHERE shop_id = $1", shop_id
    )
    if owed != credited:
        problems.append(f"credited {credited} minor units, owed {owed}")
    rollup = await conn.fetchval(
        "SELECT coalesce(sum(processed), 0) FROM order_stats_hourly WHERE shop_id = $1", shop_id
    )
    if rollup != orders:
        problems.append(f"rollup counts {rollup} processed orders, not {orders}")
    return problems


def drain_ring(processes_count: int) -> list[Job]:
    """What the intake would ring: enough drain jobs to keep every process busy."""
    jobs = []
    for k in range(max(2, processes_count * 2)):
        jobs += [
            Job(j.function, j.args, f"{j.job_id}:bench{k}") for j in webhook_service.drain_jobs()
        ]
    return jobs


async def drain_phase(
    env: Env,
    procs: Processes,
    shop: BenchShop,
    event_ids: list[int],
    workers: int,
    mode: str,
    logdir: Path,
    limit_s: float,
) -> dict[str, Any]:
    orders = len(event_ids)
    if mode == "events":
        jobs = [
            Job(webhook_service.HANDLE_EVENT_JOB, (i,), webhook_service.event_job_id(i))
            for i in event_ids
        ]
    else:
        jobs = drain_ring(workers)
    started = start_workers(env, procs, workers, logdir)
    pgids = {p.pgid for p in started}
    conn = await asyncpg.connect(env.dsn)
    try:
        await ring(env, jobs)
        deadline = time.perf_counter() + 90
        while not await count_processed(conn, shop.id):
            if time.perf_counter() > deadline or not all(p.running for p in started):
                tails = "\n".join(p.log_tail() for p in started)
                raise SystemExit(f"the workers credited nothing:\n{tails}")
            await asyncio.sleep(0.02)
        first = await count_processed(conn, shop.id)
        cpu0, pg0, t0 = group_cpu_s(pgids), postgres_ticks(env.database), time.perf_counter()
        done = first
        while done < orders and time.perf_counter() - t0 < limit_s:
            await asyncio.sleep(0.1)
            done = await count_processed(conn, shop.id)
        elapsed = time.perf_counter() - t0
        cpu, pg = group_cpu_s(pgids) - cpu0, postgres_cpu_s(env.database, pg0)
        problems = await check_credits(conn, shop.id, orders) if done >= orders else []
    finally:
        for p in started:
            p.stop(timeout=15)
        # What is left of an unfinished backlog must not hold up the next phase's.
        await conn.execute(
            "UPDATE webhook_events SET status = 'ignored', handled_at = now(), "
            "error = 'discarded by the benchmark' WHERE shop_id = $1 AND status = 'received'",
            shop.id,
        )
        await conn.close()
        await clear_queue(env)
    credited = done - first
    return {
        "workers": workers,
        "mode": mode,
        "backlog": orders,
        "credited_in_window": credited,
        "window_s": elapsed,
        "finished": done >= orders,
        "orders_per_s": credited / elapsed if elapsed > 0 else 0.0,
        "drain_time_s": elapsed * orders / credited if credited else float("nan"),
        "worker_cpu_ms_per_order": 1000 * cpu / credited if credited else float("nan"),
        "postgres_cpu_ms_per_order": 1000 * pg / credited if credited else float("nan"),
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.drain", description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--processes", default="1,2", help="worker process counts, e.g. 1,2")
    parser.add_argument("--mode", choices=("drain", "events"), default="drain")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--limit-s", type=float, default=120.0, help="longest drain per phase (then extrapolated)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-drain.json")
    parser.add_argument("--logdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args(argv)
    env = Env()
    counts = [int(c) for c in args.processes.split(",") if c.strip()]
    began = time.perf_counter()
    setup(env)
    procs = Processes()
    results = []
    try:
        for i, workers in enumerate(counts):
            shop = create_shop(env, f"bench-drain-{workers}.myshopify.com")
            t = time.perf_counter()
            ids = asyncio.run(
                store_backlog(env, shop, args.orders, args.customers, ORDER_BASE + i * 10**9)
            )
            stored_s = time.perf_counter() - t
            result = asyncio.run(
                drain_phase(env, procs, shop, ids, workers, args.mode, args.logdir, args.limit_s)
            )
            result["backlog_stored_s"] = stored_s
            results.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
    figures = []
    for r in results:
        drain_label = "drain time" + ("" if r["finished"] else " (extrapolated)")
        s = f"drain, {r['workers']} worker process(es), {r['mode']}"
        figures += [
            Figure(s, "backlog", r["backlog"], "paid orders"),
            Figure(s, "throughput", r["orders_per_s"], "orders/s"),
            Figure(s, drain_label, r["drain_time_s"], "s"),
            Figure(s, "worker CPU per order", r["worker_cpu_ms_per_order"], "ms"),
            Figure(s, "PostgreSQL CPU per order", r["postgres_cpu_ms_per_order"], "ms"),
        ]
        if r["problems"]:
            figures.append(Figure(s, "PROBLEMS", "; ".join(r["problems"])))
    if len(results) >= 2 and results[0]["orders_per_s"]:
        figures.append(
            Figure(
                "drain",
                f"scaling {results[0]['workers']} -> {results[-1]['workers']} processes",
                results[-1]["orders_per_s"] / results[0]["orders_per_s"],
                "x",
            )
        )
    print(table(figures))
    args.out.write_text(
        json.dumps(
            {"results": results, "cpus": os.cpu_count(), "run_s": time.perf_counter() - began},
            indent=2,
        )
    )
    if any(r["problems"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
