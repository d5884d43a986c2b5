"""Dashboard benchmark: one shop with N orders and about 2N ledger entries (and a shop of N/20
beside it), then the dashboard's latency, and the rollup's cost per order.

    uv run python -m bench.dashboard                     # 10,000,000: make bench-dashboard
    uv run python -m bench.dashboard --orders 1000000 --calls 200
    uv run python -m bench.dashboard --keep              # keep the seeded database …
    uv run python -m bench.dashboard --reuse             # … and measure it again

The seed is SQL only (generate_series), written the way a bulk load is: the tables' secondary
indexes and unique constraints are dropped and built again after the rows are in (one build
per index instead of 10,000,000 insertions into each), the foreign-key triggers are off while
inserting (`session_replication_role = replica`: the rows are consistent by construction, and
the constraints stay declared and valid), inserts and index builds run on two connections, and
the rollups are filled by the migration's own backfill statement. Then VACUUM ANALYZE, as
autovacuum would have left the tables (visibility map set, statistics fresh).

Uses its own database on the server of --postgres (dropped afterwards unless --keep). Prints a
table; `--out` (default bench/results-dashboard.json) is what `make bench` shows for the target.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app import migrate
from app.core.db import create_engine, create_sessionmaker
from app.metrics import dashboard, rollup
from app.shops import service as shop_service
from app.shops.models import Shop
from bench.pg import DurabilityOff, recreate_database, require_durable
from bench.stats import Figure, table

BENCH_DB = "cashback_bench_dashboard"
RESULTS = Path(__file__).resolve().parent / "results-dashboard.json"
TABLES = ("customers", "orders", "ledger_entries")
CHUNK = 1_000_000  # orders per insert statement
CONNECTIONS = 2  # the machine's cores

# Orders spread over a year; 1 in 50 still pending/held/failed/…; the rest credited, and
# every credited order also has a reversal, so entries ≈ 2 × orders. {lo}..{hi}: a chunk.
CUSTOMERS = """
INSERT INTO customers (shop_id, external_id, email, created_at, updated_at)
SELECT {shop}, 'c' || g, NULL, now(), now() FROM generate_series(1, {customers}) g
"""

OPEN_ORDERS = """
INSERT INTO orders (shop_id, external_id, currency, status, version, test, total_amount,
                    eligible_amount, cashback_amount, customer_id, created_at, updated_at,
                    paid_received_at, processed_at, review_started_at, decided_at, award_amount)
SELECT {shop}, g::text, 'USD',
       (ARRAY['pending','held','failed','awaiting_customer','scheduled'])[1 + g % 5],
       1, false, 10000, 8750, 438, {first_customer} + g % {customers},
       t, t, t, NULL, t - interval '1 hour', NULL, 438
FROM generate_series({lo}, {hi}) g, LATERAL (SELECT now() - (g % 365) * interval '1 day'
                                            - (g % 1440) * interval '1 minute' AS t) x
"""

PROCESSED_ORDERS = """
INSERT INTO orders (shop_id, external_id, currency, status, version, test, total_amount,
                    eligible_amount, cashback_amount, customer_id, created_at, updated_at,
                    paid_received_at, processed_at, review_started_at, decided_at)
SELECT {shop}, 'p' || g, 'USD', 'processed', 2, false, 10000, 8750, 438,
       {first_customer} + g % {customers},
       t, t, t, t + interval '80 milliseconds',
       CASE WHEN g % 3 = 0 THEN t END,
       CASE WHEN g % 3 = 0
            THEN t + (g % 2880) * interval '1 minute' + (g % 60) * interval '1 second' END
FROM generate_series({lo}, {hi}) g,
     LATERAL (SELECT now() - (g % 365) * interval '1 day'
                  - (g % 1440) * interval '1 minute' AS t) x
"""

# Credits of the processed orders with ids in [lo, hi], then their reversals: ledger ids are
# drawn in order, so a chunk's reversals come after its credits.
LEDGER = """
WITH credits AS (
    INSERT INTO ledger_entries (shop_id, customer_id, order_id, kind, amount, currency,
                                idempotency_key, created_at)
    SELECT shop_id, customer_id, id, 'credit', 438, 'USD', 'order:' || id || ':credit',
           processed_at
    FROM orders WHERE shop_id = {shop} AND status = 'processed' AND id BETWEEN {lo} AND {hi}
    RETURNING id, shop_id, customer_id, order_id, created_at
)
INSERT INTO ledger_entries (shop_id, customer_id, order_id, kind, amount, currency,
                            idempotency_key, reverses_entry_id, created_at)
SELECT shop_id, customer_id, order_id, 'reversal', -180, 'USD', 'refund:' || id, id,
       created_at + interval '1 day'
FROM credits
"""

_SECONDARY = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index i
WHERE i.indrelid = ANY($1::regclass[]) AND NOT i.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""

_UNIQUE = """
SELECT c.conrelid::regclass::text AS tbl, c.conname AS name,
       pg_get_constraintdef(c.oid) AS definition
FROM pg_constraint c WHERE c.contype = 'u' AND c.conrelid = ANY($1::regclass[])
"""


def chunks(first: int, last: int, size: int = CHUNK) -> Iterable[tuple[int, int]]:
    for lo in range(first, last + 1, size):
        yield lo, min(lo + size - 1, last)


async def on_connections(conns: list[asyncpg.Connection], statements: list[str]) -> None:
    """Run the statements, each connection taking the next one when it is free."""
    queue = list(reversed(statements))

    async def work(conn: asyncpg.Connection) -> None:
        while queue:
            await conn.execute(queue.pop())

    await asyncio.gather(*(work(conn) for conn in conns))


async def timed(figures: dict[str, float], name: str, job: Awaitable[Any]) -> None:
    began = time.perf_counter()
    await job
    figures[name] = time.perf_counter() - began
    print(f"bench.dashboard: {name} {figures[name]:.1f} s", file=sys.stderr, flush=True)


async def seed(dsn: str, shops: list[tuple[int, int]]) -> dict[str, float]:
    """Fill the shops ((id, orders) each); returns the seconds of each stage."""
    conns = [await asyncpg.connect(dsn) for _ in range(CONNECTIONS)]
    seconds: dict[str, float] = {}
    try:
        main = conns[0]
        indexes = await main.fetch(_SECONDARY, list(TABLES))
        uniques = await main.fetch(_UNIQUE, list(TABLES))
        for row in indexes:
            await main.execute(f"DROP INDEX {row['name']}")
        for row in uniques:
            await main.execute(f"ALTER TABLE {row['tbl']} DROP CONSTRAINT {row['name']}")
        for conn in conns:
            await conn.execute("SET session_replication_role = replica")
        orders_sql: list[str] = []
        for shop, orders in shops:
            customers = max(orders // 10, 10)
            await main.execute(CUSTOMERS.format(shop=shop, customers=customers))
            first = await main.fetchval("SELECT min(id) FROM customers WHERE shop_id = $1", shop)
            common = {"shop": shop, "customers": customers, "first_customer": first}
            opened = orders // 50
            orders_sql += [
                OPEN_ORDERS.format(lo=lo, hi=hi, **common) for lo, hi in chunks(1, opened)
            ]
            orders_sql += [
                PROCESSED_ORDERS.format(lo=lo, hi=hi, **common)
                for lo, hi in chunks(1, orders - opened)
            ]
        await timed(seconds, "orders", on_connections(conns, orders_sql))
        ledger_sql = []
        for shop, _ in shops:
            low, high = await main.fetchrow(
                "SELECT min(id), max(id) FROM orders WHERE shop_id = $1", shop
            )
            ledger_sql += [LEDGER.format(shop=shop, lo=lo, hi=hi) for lo, hi in chunks(low, high)]
        await timed(seconds, "ledger", on_connections(conns, ledger_sql))
        for conn in conns:
            await conn.execute("SET session_replication_role = origin")
            await conn.execute("SET maintenance_work_mem = '512MB'")
        builds = [row["definition"] for row in indexes]
        builds += [
            f"ALTER TABLE {r['tbl']} ADD CONSTRAINT {r['name']} {r['definition']}" for r in uniques
        ]
        await timed(seconds, "indexes", on_connections(conns, builds))
        await timed(seconds, "rollups", on_connections(conns, _rollup_backfill()))
        rollups = ("order_stats_hourly", "order_queues", "review_times_daily")
        vacuums = [f"VACUUM ANALYZE {name}" for name in (*TABLES, *rollups)]
        await timed(seconds, "vacuum", on_connections(conns, vacuums))
    finally:
        for conn in conns:
            await conn.close()
    return seconds


def _migration(name: str) -> Any:
    path = next(Path(migrate.ROOT / "migrations" / "versions").glob(f"*_{name}.py"))
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rollup_backfill() -> list[str]:
    """The statements the migrations use to fill the rollups from existing rows."""
    queues = _migration("dashboard_queues_and_review_times")
    return [
        _migration("dashboard_rollups").BACKFILL,
        queues.BACKFILL_QUEUES,
        queues.BACKFILL_REVIEW_TIMES,
    ]


async def _seeded(dsn: str, orders: int) -> tuple[int, int] | None:
    """The (big, small) shop ids of a database kept by an earlier --keep run of this size at
    this migration head; None when there is none."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        row = await conn.fetchrow(
            "SELECT big, small FROM bench_seed WHERE orders = $1 AND head = $2",
            orders,
            migrate.head_revision(),
        )
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await conn.close()
    return (int(row["big"]), int(row["small"])) if row else None


async def prepare(
    base: str, database: str, orders: int, reuse: bool
) -> tuple[int, int, dict[str, float]]:
    """A database holding the shops: kept from an earlier run (`reuse`), or seeded now."""
    dsn = f"{base}/{database}"
    if reuse and (kept := await _seeded(dsn, orders)):
        return kept[0], kept[1], {}
    await recreate_database(base, database)
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    await asyncio.to_thread(migrate.upgrade, url)
    engine = create_engine(url, pool_size=1)
    try:
        async with create_sessionmaker(engine)() as session:
            big = (await shop_service.create_shop(session, domain="big.myshopify.com")).shop
            small = (await shop_service.create_shop(session, domain="small.myshopify.com")).shop
            await session.commit()
            big_id, small_id = int(big.id), int(small.id)
    finally:
        await engine.dispose()
    seconds = await seed(dsn, [(big_id, orders), (small_id, max(orders // 20, 100))])
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "CREATE TABLE bench_seed (orders bigint, head text, big bigint, small bigint)"
        )
        await conn.execute(
            "INSERT INTO bench_seed VALUES ($1, $2, $3, $4)",
            orders,
            migrate.head_revision(),
            big_id,
            small_id,
        )
    finally:
        await conn.close()
    return big_id, small_id, seconds


async def run(
    base: str,
    orders: int,
    calls: int,
    *,
    database: str = BENCH_DB,
    keep: bool = False,
    reuse: bool = False,
) -> dict[str, Any]:
    """`base`: the server's postgresql:// URL without a database."""
    settings = await require_durable(f"{base}/postgres")
    began = time.perf_counter()
    big_id, _, seed_seconds = await prepare(base, database, orders, reuse)
    figures: dict[str, Any] = {
        "orders": orders,
        "postgres": settings,
        "seed_seconds": time.perf_counter() - began if seed_seconds else math.nan,
        "seed_stages_s": seed_seconds,
        "reused": not seed_seconds,
    }
    dsn = f"{base}/{database}"
    url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        conn = await asyncpg.connect(dsn)
        figures["orders_big_shop"] = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1", big_id
        )
        figures["ledger_entries_big_shop"] = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE shop_id = $1", big_id
        )
        figures["database_size"] = await conn.fetchval(
            "SELECT pg_size_pretty(pg_database_size(current_database()))"
        )
        await conn.close()
        engine = create_engine(url, pool_size=2)
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            shop = await session.get_one(Shop, big_id)
            session.expunge(shop)  # a plain object for the calls below
        tz = ZoneInfo("America/New_York")
        timings = []
        for _ in range(calls):  # one session per call, as one request each
            async with sessions() as session:
                started = time.perf_counter()
                await dashboard.dashboard(session, shop, tz)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        figures["dashboard_p50_ms"] = statistics.median(timings)
        figures["dashboard_p95_ms"] = timings[math.ceil(len(timings) * 0.95) - 1]
        figures["dashboard_max_ms"] = timings[-1]
        # What a processed order adds: one upsert in the transaction it commits anyway (rolled
        # back, so a kept database stays as seeded).
        bumps = 2000
        async with sessions() as session:
            started = time.perf_counter()
            for i in range(bumps):
                await rollup.bump(session, big_id, i, processed=1, cashback_issued=438)
            figures["rollup_cost_per_order_ms"] = (time.perf_counter() - started) * 1000 / bumps
            await session.rollback()
        await engine.dispose()
        return figures
    finally:
        if not keep:
            admin = await asyncpg.connect(f"{base}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()


def figures_of(result: dict[str, Any]) -> list[Figure]:
    s = f"dashboard ({result['orders']:,} orders)"
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in result["seed_stages_s"].items())
    return [
        Figure(
            s,
            "seed (orders, ledger, indexes, rollups, VACUUM ANALYZE)",
            result["seed_seconds"],
            f"s ({stages})" if stages else "s (reused: seeded by an earlier --keep run)",
        ),
        Figure(
            s,
            "orders / ledger entries of the shop",
            f"{result['orders_big_shop']:,} / {result['ledger_entries_big_shop']:,}",
        ),
        Figure(s, "database size", result["database_size"]),
        Figure(s, "dashboard p50", result["dashboard_p50_ms"], "ms"),
        Figure(s, "dashboard p95", result["dashboard_p95_ms"], "ms"),
        Figure(s, "dashboard max", result["dashboard_max_ms"], "ms"),
        Figure(s, "rollup cost per processed order", result["rollup_cost_per_order_ms"], "ms"),
    ]


def last_result(path: Path = RESULTS) -> dict[str, Any] | None:
    """What the last `make bench-dashboard` measured, if it did."""
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded


def commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app", "migrations"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return done.stdout.strip() + ("+changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--reuse", action="store_true", help="measure a database kept by --keep")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    try:
        result = asyncio.run(
            run(
                args.postgres.rstrip("/"), args.orders, args.calls, keep=args.keep, reuse=args.reuse
            )
        )
    except DurabilityOff as exc:
        raise SystemExit(f"refusing to benchmark: {exc}") from exc
    result["measured_at"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    result["commit"] = commit()
    print(table(figures_of(result)))
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
