"""Worker throughput: drain a backlog of stored paid orders with 1, then 2 worker processes.

    uv run python -m bench.drain                    # 20,000 orders, 1 then 2 processes
    uv run python -m bench.drain --orders 100000 --processes 1 --limit-s 300
    uv run python -m bench.drain --mode events --orders 3000   # one job per event (the old way)

The backlog is written straight into `webhook_events` (COPY), as the API would have stored it:
one `orders/paid` event per order, distinct orders over `--customers` customers. Then the
worker processes start and are rung (`--mode drain`: the batch drain jobs; `--mode events`: one
`handle_webhook_event` job per event). The drain time runs from the first credit committed to
the last (the workers' start-up is not their pace), polled every POLL_S; nothing is
extrapolated: a backlog not drained within `--limit-s` fails the run. Then every order must be
processed with exactly one credit of its cashback and the ledger equal to what is owed. Also:
orders credited per second, and CPU (utime + stime, from /proc) per order of the workers and of
PostgreSQL. Each process count gets its own shop, so every phase starts on an equal backlog.

Needs PostgreSQL at 127.0.0.1:5432 and Redis at 127.0.0.1:6379; database
`cashback_bench_backlog` is re-created at each run, Redis DB 15 holds the queue and the run's
lock (not the names of the bench before issue 19, which flushed its Redis database unlocked).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.core.broker import Broker, Job, create_redis
from app.inbox import service as webhook_service
from bench.cpu import (
    LABEL_POSTGRES,
    LABEL_WORKER,
    CpuMeter,
    Labeller,
    interference_note,
    peak_rss_of,
)
from bench.harness import (
    REPO,
    BenchShop,
    Env,
    clear_queue,
    create_shop,
    release,
    setup,
    start_workers,
    write_results,
)
from bench.payloads import API_VERSION, OrderFactory
from bench.pg import check_orders, postmaster_pid
from bench.procs import Processes
from bench.stats import Figure, table

ORDER_BASE = 8_000_000_000_000
COPY_CHUNK = 10_000
POLL_S = 0.05
FIRST_CREDIT_LIMIT_S = 90.0


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


async def count_processed(conn: asyncpg.Connection, shop_id: int) -> int:
    return int(
        await conn.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1 AND status = 'processed'", shop_id
        )
    )


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
    started = start_workers(env, procs, workers, logdir, f"drain{workers}-worker")
    conn = await asyncpg.connect(env.dsn)
    labeller = Labeller(env.database, await postmaster_pid(conn))
    labeller.groups.update({p.pgid: LABEL_WORKER for p in started})
    try:
        await ring(env, jobs)
        deadline = time.perf_counter() + FIRST_CREDIT_LIMIT_S
        while not (first := await count_processed(conn, shop.id)):
            if time.perf_counter() > deadline or not all(p.running for p in started):
                tails = "\n".join(p.log_tail() for p in started)
                raise SystemExit(f"the workers credited nothing:\n{tails}")
            await asyncio.sleep(POLL_S / 5)
        meter = CpuMeter(labeller)
        meter.start()
        t0 = time.perf_counter()
        done = first
        while done < orders and time.perf_counter() - t0 < limit_s:
            await asyncio.sleep(POLL_S)
            done = await count_processed(conn, shop.id)
        elapsed = time.perf_counter() - t0
        cpu = meter.stop()  # before the workers stop, or their CPU is lost with them
        rss = peak_rss_of({p.pgid for p in started})
        integrity = await check_orders(conn, shop.id, orders)
    finally:
        for p in started:
            p.stop(timeout=15)
        # What is left of an unfinished backlog (a failure, reported) must not slow the next phase.
        await conn.execute(
            "UPDATE webhook_events SET status = 'ignored', handled_at = now(), "
            "error = 'discarded by the benchmark' WHERE shop_id = $1 AND status = 'received'",
            shop.id,
        )
        await conn.close()
        await clear_queue(env)
    finished = done >= orders
    if not finished:
        integrity.problems.insert(
            0, f"the backlog was not drained in {limit_s:g} s ({done} of {orders} credited)"
        )
    credited = done - first
    note = interference_note(f"drain, {workers} worker process(es)", cpu)

    def per_order(label: str) -> float:
        return 1000 * cpu.by_label_s.get(label, 0.0) / credited if credited else math.nan

    return {
        "workers": workers,
        "mode": mode,
        "backlog": orders,
        "credited_at_start": first,
        "finished": finished,
        "drain_time_s": elapsed if finished else math.nan,
        "window_s": elapsed,
        "orders_per_s": credited / elapsed if elapsed > 0 else 0.0,
        "worker_cpu_ms_per_order": per_order(LABEL_WORKER),
        "postgres_cpu_ms_per_order": per_order(LABEL_POSTGRES),
        "worker_peak_rss_mb": rss,
        "integrity": integrity.as_dict(),
        "problems": integrity.problems,
        "note": note,
    }


def figures_of(results: list[dict[str, Any]]) -> list[Figure]:
    figures = []
    for r in results:
        s = f"drain, {r['workers']} worker process(es), {r['mode']}"
        figures += [
            Figure(s, "backlog", r["backlog"], "paid orders"),
            Figure(s, "drain time, first credit -> last credit", r["drain_time_s"], "s"),
            Figure(s, "throughput", r["orders_per_s"], "orders/s"),
            Figure(s, "worker CPU per order", r["worker_cpu_ms_per_order"], "ms"),
            Figure(s, "PostgreSQL CPU per order", r["postgres_cpu_ms_per_order"], "ms"),
            Figure(s, "worker peak RSS (largest process)", r["worker_peak_rss_mb"], "MB"),
            Figure(
                s,
                "integrity",
                "ok" if not r["problems"] else "PROBLEMS: " + "; ".join(r["problems"]),
            ),
        ]
    if len(results) >= 2 and results[0]["orders_per_s"]:
        figures.append(
            Figure(
                "drain",
                f"scaling {results[0]['workers']} -> {results[-1]['workers']} processes",
                results[-1]["orders_per_s"] / results[0]["orders_per_s"],
                "x",
            )
        )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.drain",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2", help="worker process counts, e.g. 1,2")
    parser.add_argument("--mode", choices=("drain", "events"), default="drain")
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--limit-s", type=float, default=120.0, help="longest drain per phase (then: a failure)"
    )
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-drain.json")
    parser.add_argument("--logdir", type=Path, default=Path("/tmp"))
    args = parser.parse_args(argv)
    env = Env(
        database="cashback_bench_backlog",
        redis="redis://127.0.0.1:6379/15",
        queue="cashback:bench-backlog",
        postgres=args.postgres,
    )
    counts = [int(c) for c in args.processes.split(",") if c.strip()]
    began = time.perf_counter()
    settings = setup(env)
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
            print(
                f"drain, {workers} worker process(es): {result['drain_time_s']:.1f} s, "
                f"{result['orders_per_s']:.0f} orders/s"
                + (
                    "" if not result["problems"] else "; PROBLEMS: " + "; ".join(result["problems"])
                ),
                file=sys.stderr,
                flush=True,
            )
    finally:
        procs.stop_all()
        release(env)
    print(table(figures_of(results)))
    notes = [r["note"] for r in results if r["note"]]
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    write_results(
        args.out,
        {
            "results": results,
            "postgres": settings,
            "notes": notes,
            "cpus": os.cpu_count(),
            "run_s": time.perf_counter() - began,
        },
    )
    if any(r["problems"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
