"""Dashboard benchmark: one shop with 1,000,000 orders and 2,000,000 ledger entries (and a
smaller shop beside it), then the dashboard's latency, and the rollup's cost per order.

    uv run python -m bench.dashboard [--orders 1000000] [--calls 200]

Uses CASHBACK_DATABASE_URL (default: the local PostgreSQL) only to create, fill and drop a
database of its own. Prints a table and writes bench/results-dashboard.json.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy.engine import make_url

from app import migrate
from app.core.db import create_engine, create_sessionmaker
from app.metrics import dashboard, rollup
from app.shops import service as shop_service
from app.shops.models import Shop

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "cashback_bench_dashboard"
RESULTS = Path(__file__).resolve().parent / "results-dashboard.json"

# Orders spread over a year; 1 in 50 still pending/held/failed/…; the rest credited, and
# every credited order also has a reversal half the time, so entries ≈ 2 × orders.
SEED = """
INSERT INTO customers (shop_id, external_id, email, created_at, updated_at)
SELECT {shop}, 'c' || g, NULL, now(), now() FROM generate_series(1, {customers}) g;

INSERT INTO orders (shop_id, external_id, currency, status, version, test, total_amount,
                    eligible_amount, cashback_amount, customer_id, created_at, updated_at,
                    paid_received_at, processed_at, review_started_at, decided_at, award_amount)
SELECT {shop}, g::text, 'USD',
       (ARRAY['pending','held','failed','awaiting_customer','scheduled'])[1 + g % 5],
       1, false, 10000, 8750, 438,
       (SELECT min(id) FROM customers WHERE shop_id = {shop}) + g % {customers},
       t, t, t, NULL, t - interval '1 hour', NULL, 438
FROM generate_series(1, {orders} / 50) g, LATERAL (SELECT now() - (g % 365) * interval '1 day'
                                            - (g % 1440) * interval '1 minute' AS t) x;

INSERT INTO orders (shop_id, external_id, currency, status, version, test, total_amount,
                    eligible_amount, cashback_amount, customer_id, created_at, updated_at,
                    paid_received_at, processed_at, review_started_at, decided_at)
SELECT {shop}, 'p' || g, 'USD', 'processed', 2, false, 10000, 8750, 438,
       (SELECT min(id) FROM customers WHERE shop_id = {shop}) + g % {customers},
       t, t, t, t + interval '80 milliseconds',
       CASE WHEN g % 3 = 0 THEN t END, CASE WHEN g % 3 = 0 THEN t + interval '2 hours' END
FROM generate_series(1, {orders} - {orders} / 50) g,
     LATERAL (SELECT now() - (g % 365) * interval '1 day'
                  - (g % 1440) * interval '1 minute' AS t) x;

INSERT INTO ledger_entries (shop_id, customer_id, order_id, kind, amount, currency,
                            idempotency_key, created_at)
SELECT shop_id, customer_id, id, 'credit', 438, 'USD', 'order:' || id || ':credit',
       processed_at
FROM orders WHERE shop_id = {shop} AND status = 'processed';

INSERT INTO ledger_entries (shop_id, customer_id, order_id, kind, amount, currency,
                            idempotency_key, reverses_entry_id, created_at)
SELECT shop_id, customer_id, order_id, 'reversal', -180, 'USD', 'refund:' || id, id,
       created_at + interval '1 day'
FROM ledger_entries WHERE shop_id = {shop} AND kind = 'credit';
"""


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


async def run(base_url: str, orders: int, calls: int) -> dict[str, float]:
    admin = await asyncpg.connect(_dsn(base_url))
    await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    url = make_url(base_url).set(database=BENCH_DB).render_as_string(False)
    figures: dict[str, float] = {}
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        engine = create_engine(url, pool_size=2)
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            big = (await shop_service.create_shop(session, domain="big.myshopify.com")).shop
            small = (await shop_service.create_shop(session, domain="small.myshopify.com")).shop
            await session.commit()
            big_id, small_id = big.id, small.id
        conn = await asyncpg.connect(_dsn(url))
        started = time.perf_counter()
        for shop_id, count in ((big_id, orders), (small_id, max(orders // 20, 100))):
            sql = SEED.format(shop=int(shop_id), orders=int(count), customers=max(count // 10, 10))
            await conn.execute(sql)
        await conn.execute(_rollup_backfill())
        await conn.execute("VACUUM ANALYZE")
        figures["seed_seconds"] = time.perf_counter() - started
        figures["orders_big_shop"] = await conn.fetchval(
            "SELECT count(*) FROM orders WHERE shop_id = $1", big_id
        )
        figures["ledger_entries_big_shop"] = await conn.fetchval(
            "SELECT count(*) FROM ledger_entries WHERE shop_id = $1", big_id
        )
        await conn.close()

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
        figures["dashboard_p95_ms"] = timings[int(len(timings) * 0.95) - 1]

        # What a processed order adds: one upsert in the transaction it commits anyway.
        bumps = 2000
        async with sessions() as session:
            started = time.perf_counter()
            for i in range(bumps):
                await rollup.bump(session, big_id, i, processed=1, cashback_issued=438)
            figures["rollup_cost_per_order_ms"] = (time.perf_counter() - started) * 1000 / bumps
            await session.commit()
        await engine.dispose()
        return figures
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await admin.close()


def _rollup_backfill() -> str:
    """The statement the migration uses to fill the rollups from existing rows."""
    path = next(Path(migrate.ROOT / "migrations" / "versions").glob("*_dashboard_rollups.py"))
    spec = importlib.util.spec_from_file_location("dashboard_rollups", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    backfill: str = module.BACKFILL
    return backfill


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    figures = asyncio.run(
        run(os.environ.get("CASHBACK_DATABASE_URL", DEFAULT_URL), args.orders, args.calls)
    )
    targets = {"dashboard_p95_ms": "≤ 50 ms"}
    print(f"{'figure':<28} {'value':>14}  target")
    for name, value in figures.items():
        print(f"{name:<28} {value:>14.3f}  {targets.get(name, '')}")
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
