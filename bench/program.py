"""Program benchmarks: one 100-line order under a 50-rule program, and a what-if simulation
over 100,000 stored orders.

    uv run python -m bench.program [--orders 100000]

Uses CASHBACK_DATABASE_URL (default: the local PostgreSQL) only to create, fill and drop a
database of its own. Prints a table and writes bench/results-program.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app import migrate
from app.core.db import create_engine, create_sessionmaker
from app.core.snapshots import PlatformCustomer, PlatformLine, PlatformOrder, snapshot_to_json
from app.program import service as program_service
from app.program.calculator import calculate, compile_program
from app.program.rules import Campaign, MatchField, ProductRule, Program, Tier
from app.shops import service as shop_service
from app.shops.models import Shop

DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BENCH_DB = "cashback_bench_program"
RESULTS = Path(__file__).resolve().parent / "results-program.json"


def big_order(lines: int = 100) -> PlatformOrder:
    return PlatformOrder(
        external_id="1",
        currency="USD",
        lines=tuple(
            PlatformLine(
                external_id=str(1000 + i),
                title=f"Item {i}",
                quantity=1 + i % 3,
                unit_price=1999 + 37 * i,
                discount_amount=(i % 4) * 100,
                product_id=f"p{i % 40}",
                variant_id=f"v{i}",
                sku=f"SKU-{i}",
                vendor=f"vendor{i % 7}",
                product_type=f"type{i % 5}",
                product_tags=(f"tag{i % 9}", "all"),
                collections=(f"c{i % 6}",),
            )
            for i in range(lines)
        ),
        total_amount=10**7,
        customer=PlatformCustomer("c1", tags=("vip",)),
        created_at=datetime(2026, 11, 28, 12, tzinfo=UTC),
    )


def fifty_rule_program() -> Program:
    fields = list(MatchField)
    rules = [
        ProductRule(
            name=f"rule {i}",
            field=fields[i % len(fields)],
            value={
                MatchField.variant_id: f"v{i * 2}",
                MatchField.product_id: f"p{i}",
                MatchField.sku: f"SKU-{i * 3}",
                MatchField.collection: f"c{i % 6}",
                MatchField.tag: f"tag{i % 9}",
                MatchField.product_type: f"type{i % 5}",
                MatchField.vendor: f"vendor{i % 7}",
            }[fields[i % len(fields)]],
            rate=None if i % 10 == 9 else Decimal(3 + i % 7),
            exclude=i % 10 == 9,
            priority=i % 3,
        )
        for i in range(50)
    ]
    return Program(
        rules=rules,
        tiers=[Tier(name="VIP", customer_tag="vip", rate=Decimal(8))],
        campaigns=[
            Campaign(
                name="Black Friday",
                starts_at=datetime(2026, 11, 27),  # noqa: DTZ001 (shop-local)
                ends_at=datetime(2026, 11, 30),  # noqa: DTZ001
                multiplier=Decimal(2),
            )
        ],
        maximum_cashback_per_order=Decimal(500),
    )


def bench_calculation(iterations: int) -> dict[str, float]:
    order, program = big_order(), fifty_rule_program()
    started = time.perf_counter()
    compile_program(program)
    cold_ms = (time.perf_counter() - started) * 1000
    timings = []
    for _ in range(iterations):
        started = time.perf_counter()
        calculate(order, program)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return {
        "calc_100_lines_50_rules_mean_ms": statistics.fmean(timings),
        "calc_100_lines_50_rules_median_ms": statistics.median(timings),
        "calc_100_lines_50_rules_p99_ms": timings[int(len(timings) * 0.99) - 1],
        "program_compile_ms": cold_ms,
    }


def sample_snapshot() -> dict[str, object]:
    example = Path(__file__).resolve().parent.parent / "examples" / "orders-paid.json"
    from app.shopify.payloads import parse_order

    return snapshot_to_json(parse_order(json.loads(example.read_text()), "orders/paid"))


async def bench_simulation(base_url: str, orders: int) -> dict[str, float]:
    admin_dsn = make_url(base_url).set(drivername="postgresql").render_as_string(False)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{BENCH_DB}"')
    url = make_url(base_url).set(database=BENCH_DB).render_as_string(False)
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        engine = create_engine(url, pool_size=2)
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            created = await shop_service.create_shop(session, domain="bench.myshopify.com")
            await session.commit()
            shop_id = created.shop.id
        conn = await asyncpg.connect(
            make_url(url).set(drivername="postgresql").render_as_string(False)
        )
        started = time.perf_counter()
        await conn.execute(
            """
            INSERT INTO orders (shop_id, external_id, currency, status, version, test,
                                total_amount, eligible_amount, cashback_amount,
                                paid_received_at, snapshot, created_at, updated_at)
            SELECT $1, g::text, 'USD', 'processed', 1, false, 12470, 8750, 438, now(),
                   jsonb_set($2::jsonb, '{external_id}', to_jsonb(g::text)), now(), now()
            FROM generate_series(1, $3) AS g
            """,
            shop_id,
            json.dumps(sample_snapshot()),
            orders,
        )
        await conn.execute("ANALYZE orders")
        await conn.close()
        seed_s = time.perf_counter() - started
        draft = Program(base_rate=Decimal(10), minimum_eligible_amount=Decimal(50))
        async with sessions() as session:
            shop = await session.get_one(Shop, shop_id)
            started = time.perf_counter()
            result = await program_service.simulate(
                session, shop, draft, date(2000, 1, 1), date(2999, 12, 31)
            )
            simulate_s = time.perf_counter() - started
        await engine.dispose()
        assert result.orders == orders, result
        return {
            "simulation_orders": orders,
            "simulation_seconds": simulate_s,
            "simulation_orders_per_second": orders / simulate_s,
            "seed_seconds": seed_s,
        }
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--iterations", type=int, default=2_000)
    args = parser.parse_args()
    base_url = os.environ.get("CASHBACK_DATABASE_URL", DEFAULT_URL)
    figures: dict[str, float] = bench_calculation(args.iterations)
    figures |= asyncio.run(bench_simulation(base_url, args.orders))
    targets = {
        "calc_100_lines_50_rules_mean_ms": "< 1 ms",
        "calc_100_lines_50_rules_median_ms": "< 1 ms",
        "calc_100_lines_50_rules_p99_ms": "< 1 ms",
        "simulation_seconds": "batches of 2,000",
    }
    print(f"{'figure':<36} {'value':>14}  target")
    for name, value in figures.items():
        print(f"{name:<36} {value:>14.3f}  {targets.get(name, '')}")
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
