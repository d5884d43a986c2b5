"""What one credited order costs each part, and what a rate of orders would then take.

    uv run python -m bench.costs                 # 100 create+paid orders/s for 30 s
    uv run python -m bench.costs --rate 150 --seconds 40

Runs one step of `bench.e2e` (API + worker, real webhooks, every order checked credited once)
and, around it, reads what the servers themselves count: WAL bytes written
(`pg_current_wal_lsn`), transactions committed in the bench's database (`pg_stat_database`),
Redis commands served (`INFO commandstats`), and the most connections the database had open at
once (sampled every 0.2 s). Per credited order these, with the CPU the e2e step measured per
component, give `docs/scaling.md`'s table; from them, what 1,000, 5,000 and 20,000 orders/s would
need (cores, WAL rate, commits/s, Redis commands/s), assuming the per-order costs stay flat
(they fall with larger batches, so this errs high). Writes bench/results-costs.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

import asyncpg
from redis.asyncio import Redis

from bench.harness import REPO

DATABASE = "cashback_bench_ramp"  # bench.e2e's
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/0"
RATES = (1_000, 5_000, 20_000)


async def _redis_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return sum(int(v["calls"]) for v in stats.values())


async def _wal_lsn(conn: asyncpg.Connection) -> int:
    """The WAL position in bytes (asyncpg reads a pg_lsn as an integer)."""
    return int(await conn.fetchval("SELECT pg_current_wal_lsn()"))


async def _commits(conn: asyncpg.Connection) -> int:
    value = await conn.fetchval(
        "SELECT coalesce(xact_commit, 0) FROM pg_stat_database WHERE datname = $1", DATABASE
    )
    return int(value or 0)


async def _sample_connections(conn: asyncpg.Connection, peak: list[int]) -> None:
    while True:
        count = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", DATABASE
        )
        peak[0] = max(peak[0], int(count))
        await asyncio.sleep(0.2)


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(POSTGRES)
    redis = Redis.from_url(REDIS)
    try:
        wal_before, calls_before = await _wal_lsn(conn), await _redis_calls(redis)
        peak = [0]
        sampler = asyncio.create_task(_sample_connections(conn, peak))
        out = REPO / "bench" / "results-costs-e2e.json"
        command = [
            sys.executable,
            "-m",
            "bench.e2e",
            "--rates",
            f"{args.rate:g}",
            "--seconds",
            f"{args.seconds:g}",
            "--out",
            str(out),
        ]
        process = await asyncio.create_subprocess_exec(*command, cwd=REPO)
        code = await process.wait()
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        # The database was made by the step: its counters are this run's alone.
        commits = await _commits(conn)
        wal_bytes = await _wal_lsn(conn) - wal_before
        calls = await _redis_calls(redis) - calls_before
    finally:
        await conn.close()
        await redis.aclose()
    if code != 0:
        raise SystemExit(f"bench.e2e failed (exit {code}): no costs from a failed run")
    e2e = json.loads(out.read_text())
    step = e2e["steps"][0]
    orders = int(step["orders"])
    cpu = step["cpu_ms_per_order"]
    return {
        "rate": args.rate,
        "seconds": args.seconds,
        "orders": orders,
        "cpu_ms_per_order": cpu,
        "wal_bytes_per_order": wal_bytes / orders,
        "commits_per_order": commits / orders,
        "redis_commands_per_order": calls / orders,
        "peak_db_connections": peak[0],
        "passed": step["passed"],
    }


def projections(costs: dict[str, Any]) -> list[dict[str, Any]]:
    cpu = costs["cpu_ms_per_order"]
    rows = []
    for rate in RATES:
        rows.append(
            {
                "orders_per_s": rate,
                "api_cores": rate * cpu["api"] / 1000,
                "worker_cores": rate * cpu["worker"] / 1000,
                "postgres_cores": rate * cpu["postgres"] / 1000,
                "wal_mb_per_s": rate * costs["wal_bytes_per_order"] / 1e6,
                "commits_per_s": rate * costs["commits_per_order"],
                "redis_commands_per_s": rate * costs["redis_commands_per_order"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.costs", description=__doc__)
    parser.add_argument("--rate", type=float, default=100.0, help="create+paid orders/s")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    costs = asyncio.run(measure(args))
    rows = projections(costs)
    cpu = costs["cpu_ms_per_order"]
    print(f"\n[cost of one credited order at {costs['rate']:g}/s, {costs['orders']} orders]")
    for name in ("api", "worker", "postgres", "redis"):
        print(f"CPU {name:<38} {cpu.get(name, float('nan')):8.2f} ms")
    print(f"{'WAL written':<42} {costs['wal_bytes_per_order']:8.0f} bytes")
    print(f"{'transactions committed':<42} {costs['commits_per_order']:8.2f}")
    print(f"{'Redis commands':<42} {costs['redis_commands_per_order']:8.2f}")
    print(f"{'database connections at once (peak)':<42} {costs['peak_db_connections']:8d}")
    print("\n[what a rate would take, at these costs]")
    header = "orders/s  API cores  worker cores  PG cores  WAL MB/s  commits/s  Redis cmd/s"
    print(header)
    for r in rows:
        print(
            f"{r['orders_per_s']:>8,}  {r['api_cores']:>9.1f}  {r['worker_cores']:>12.1f}  "
            f"{r['postgres_cores']:>8.1f}  {r['wal_mb_per_s']:>8.1f}  {r['commits_per_s']:>9,.0f}"
            f"  {r['redis_commands_per_s']:>11,.0f}"
        )
    out = REPO / "bench" / "results-costs.json"
    out.write_text(json.dumps({"costs": costs, "projections": rows}, indent=2))
    print(f"\nwrote {out}")
    if not costs["passed"]:
        print("note: the step did not keep up (p95 > 1 s or late orders)", file=sys.stderr)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
