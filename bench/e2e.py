"""End to end, automatic mode: create + paid webhooks -> credit visible, at rising rates.

    uv run python -m bench.e2e                                 # 100, 200, … 700 orders/s
    uv run python -m bench.e2e --rates 100 --seconds 10        # one short step
    uv run python -m bench.e2e --workers 2 --api-workers 1 --seed 7

Each order arrives as `orders/create` then, after a gap drawn uniformly from 0 to `--gap-max`
seconds (seeded: `--seed`), `orders/paid`, as on a real store. Requests are sent open loop:
each at its due time whatever the answers before it, over up to `--connections` keep-alive
connections, so a stall shows in the latencies instead of slowing the sender.

Paid -> credit, the one meaning used here: from the moment the paid webhook was due to be sent
to the moment the order's `order.status_changed` to `processed` arrives on a real SSE client
of `GET /v1/events` (authenticated with the shop's API key). The service publishes that event
after the transaction that credited the order has committed, so the figure includes the
webhook's answer, the queue, the worker's batch, its commit and the live-event relay. An order
credited whose event never arrives counts as never credited in the latencies.

A step passes when every request got a 2xx `accepted` and its event is stored, every order is
credited exactly once with its cashback within SETTLE_S of the step's last send, and p95 <= 1 s.
Steps run from the lowest rate up and stop at the first that fails; the highest passing rate is
the sustained rate. After the last step the bench waits for every order (up to
--final-drain-s) and checks the whole shop: every order credited once, the ledger equal to what
is owed, no event failed or left unhandled. A problem there fails the run (exit status 1).

CPU per credited order: user + system time from /proc of the API, the worker and PostgreSQL
(our database's backends and the server's own processes) over the step, divided by the orders
credited in it. Peak RSS: VmHWM of each API and worker process at the end.

Database `cashback_bench_ramp` (re-created), Redis DB 14 (locked for the run), queue
`cashback:bench-ramp`. (Not the names of the bench before issue 19, whose e2e dropped its
database and flushed its Redis database without a lock: an old run beside a new one would
destroy it.)
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from app.shopify.payloads import sign
from bench import rawhttp
from bench.cpu import (
    LABEL_API,
    LABEL_DRIVER,
    LABEL_POSTGRES,
    LABEL_REDIS,
    LABEL_WORKER,
    SERVICE_LABELS,
    CpuMeter,
    CpuReport,
    Labeller,
    interference_note,
    peak_rss_of,
)
from bench.harness import (
    REPO,
    BenchShop,
    Env,
    create_shop,
    free_port,
    release,
    setup,
    start_api,
    start_workers,
    wait_ready,
    write_results,
)
from bench.payloads import API_VERSION, WEBHOOK_PATH, OrderFactory
from bench.pg import AutovacuumStandIn, Integrity, check_orders, postmaster_pid
from bench.pooler import PgBouncer
from bench.procs import Processes
from bench.sse import EventStream
from bench.stats import Figure, percentile, table

ORDER_BASE = 9_000_000_000_000
WARMUP_BASE = ORDER_BASE - 1_000_000
P95_LIMIT_S = 1.0
SETTLE_S = 8.0  # after a step's last send, how long its last orders may take to be credited
POLL_S = 0.05
LAG_NOTE_S = 0.1  # the sender behind its schedule by more than this: worth a note
RATES = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0)


@dataclass
class Step:
    rate: float
    seconds: float
    first_id: int
    http: Counter[str] = field(default_factory=Counter)  # "200 accepted", "500", "error …"
    response_s: list[float] = field(default_factory=list)  # from each request's due time
    paid_due: dict[str, float] = field(default_factory=dict)  # perf_counter, per order
    latencies_s: list[float] = field(default_factory=list)  # paid due -> credit seen
    send_lag_s: float = 0.0
    events_stored: int = 0
    not_seen: int = 0  # credited (or not) but never seen on the stream
    integrity: Integrity | None = None
    cpu: CpuReport | None = None
    window_s: float = 0.0  # first send -> last credit seen (or the settle deadline)
    reasons: list[str] = field(default_factory=list)  # why it failed

    @property
    def orders(self) -> int:
        return round(self.rate * self.seconds)

    @property
    def ids(self) -> list[str]:
        return [str(self.first_id + n) for n in range(self.orders)]

    @property
    def accepted(self) -> int:
        return self.http["200 accepted"]

    @property
    def passed(self) -> bool:
        return not self.reasons

    def pct(self, p: float) -> float:
        return percentile(self.latencies_s, p)

    def credited(self) -> int:
        return self.integrity.processed if self.integrity else 0

    def cpu_ms_per_order(self, labels: tuple[str, ...]) -> float:
        credited = self.credited()
        if self.cpu is None or not credited:
            return math.nan
        return 1000 * sum(self.cpu.by_label_s.get(label, 0.0) for label in labels) / credited

    def judge(self) -> None:
        requests = 2 * self.orders
        if self.accepted != requests:
            answers = ", ".join(f"{n} {k}" for k, n in self.http.items() if k != "200 accepted")
            self.reasons.append(f"{requests - self.accepted} requests not accepted ({answers})")
        if self.events_stored != requests:
            self.reasons.append(f"{self.events_stored} of {requests} events stored")
        if self.integrity is not None and not self.integrity.ok:
            self.reasons.append(f"within {SETTLE_S:g} s: " + "; ".join(self.integrity.problems))
        if self.not_seen:
            self.reasons.append(f"{self.not_seen} orders never seen credited on the stream")
        if not self.pct(95) <= P95_LIMIT_S:
            self.reasons.append(f"p95 {self.pct(95):.3f} s > {P95_LIMIT_S:g} s")

    def summary(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "seconds": self.seconds,
            "orders": self.orders,
            "http": dict(self.http),
            "events_stored": self.events_stored,
            "send_lag_ms": 1000 * self.send_lag_s,
            "response_ms": {str(p): 1000 * percentile(self.response_s, p) for p in PCTS},
            "paid_to_credit_ms": {str(p): 1000 * self.pct(p) for p in PCTS},
            "not_seen_on_stream": self.not_seen,
            "credited": self.credited(),
            "integrity": self.integrity.as_dict() if self.integrity else None,
            "window_s": self.window_s,
            "cpu_ms_per_order": {
                "service": self.cpu_ms_per_order(SERVICE_LABELS),
                **{label: self.cpu_ms_per_order((label,)) for label in CPU_LABELS},
            },
            "cpu": asdict(self.cpu) if self.cpu else None,
            "passed": self.passed,
            "reasons": self.reasons,
        }


PCTS = (50, 95, 99, 100)
CPU_LABELS = (LABEL_API, LABEL_WORKER, LABEL_POSTGRES, LABEL_REDIS, LABEL_DRIVER)


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


def event_keys(ids: list[str]) -> list[str]:
    return [f"{topic}-{i}" for i in ids for topic in ("orders/create", "orders/paid")]


@dataclass
class Run:
    """What a step needs: the service's address, the shop, and the instruments."""

    host: str
    port: int
    shop: BenchShop
    factory: OrderFactory
    client: rawhttp.Client
    stream: EventStream
    conn: asyncpg.Connection
    labeller: Labeller
    rng: random.Random
    gap_max_s: float


async def run_step(step: Step, run: Run) -> None:
    schedule: list[tuple[float, bytes, str | None]] = []  # (offset, request, order if paid)
    for n, key in enumerate(step.ids):
        create, paid = requests_for(run.factory, run.shop, int(key), run.host)
        at = n / step.rate
        schedule += [(at, create, None), (at + run.rng.uniform(0.0, run.gap_max_s), paid, key)]
    schedule.sort(key=lambda item: item[0])

    async def post(raw: bytes, due: float) -> None:
        try:
            status, body = await run.client.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            step.http[f"error {type(exc).__name__}"] += 1
            step.response_s.append(math.inf)
            return
        step.response_s.append(time.perf_counter() - due)
        result = orjson.loads(body).get("result") if status == 200 else None
        step.http[f"{status} {result}" if result else str(status)] += 1

    meter = CpuMeter(run.labeller)
    meter.start()
    tasks = []
    start = time.perf_counter() + 0.05
    for offset, raw, paid_of in schedule:
        due = start + offset
        lag = time.perf_counter() - due
        if lag < 0:
            await asyncio.sleep(-lag)
        else:
            step.send_lag_s = max(step.send_lag_s, lag)
        if paid_of is not None:
            step.paid_due[paid_of] = due
        tasks.append(asyncio.create_task(post(raw, due)))
    await asyncio.gather(*tasks)
    deadline = time.perf_counter() + SETTLE_S
    pending = [k for k in step.ids if k not in run.stream.credited]
    while pending and time.perf_counter() < deadline and run.stream.error is None:
        await asyncio.sleep(POLL_S)
        pending = [k for k in pending if k not in run.stream.credited]
    step.window_s = time.perf_counter() - start
    step.cpu = meter.stop()  # before the checks below: the bench's queries are not the service's
    step.integrity = await check_orders(run.conn, run.shop.id, step.orders, step.ids)
    step.events_stored = int(
        await run.conn.fetchval(
            "SELECT count(*) FROM webhook_events WHERE shop_id = $1 AND event_key = ANY($2)",
            run.shop.id,
            event_keys(step.ids),
        )
    )
    for key in step.ids:
        seen = run.stream.credited.get(key)
        step.latencies_s.append(math.inf if seen is None else seen - step.paid_due[key])
    step.not_seen = sum(1 for key in step.ids if key not in run.stream.credited)
    step.judge()


async def wait_all_processed(
    conn: asyncpg.Connection, shop_id: int, total: int, limit_s: float
) -> float:
    """Seconds until the shop has `total` processed orders and no event left unhandled (or
    `limit_s`, whichever first). An `orders/create` whose `orders/paid` credited the order
    first is still handled (as stale) after `create_settle_s`: the drain is done then."""
    began = time.perf_counter()
    while time.perf_counter() - began < limit_s:
        done, unhandled = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM orders WHERE shop_id = $1 AND status = 'processed'),"
            " (SELECT count(*) FROM webhook_events WHERE shop_id = $1 AND status = 'received')",
            shop_id,
        )
        if done >= total and not unhandled:
            break
        await asyncio.sleep(0.2)
    return time.perf_counter() - began


async def final_check(
    conn: asyncpg.Connection, shop_id: int, total: int, limit_s: float
) -> tuple[Integrity, dict[str, int], float]:
    """Once every order is processed (or the limit passed): the whole shop's integrity, and its
    events by status (all must be handled, none failed)."""
    waited = await wait_all_processed(conn, shop_id, total, limit_s)
    integrity = await check_orders(conn, shop_id, total)
    events = {
        str(status): int(n)
        for status, n in await conn.fetch(
            "SELECT status, count(*) FROM webhook_events WHERE shop_id = $1 GROUP BY status",
            shop_id,
        )
    }
    for status in ("received", "failed"):
        if events.get(status):
            integrity.problems.append(f"{events[status]} webhook events {status}")
    if sum(events.values()) != 2 * total:
        integrity.problems.append(f"{sum(events.values())} events stored for {2 * total} sent")
    return integrity, events, waited


async def run(
    args: argparse.Namespace,
    env: Env,
    shop: BenchShop,
    procs: Processes,
    settings: dict[str, str],
) -> dict[str, Any]:
    port = args.port or free_port()
    host = f"127.0.0.1:{port}"
    api = start_api(env, procs, port, args.api_workers, args.logdir)
    workers = start_workers(env, procs, args.workers, args.logdir, "e2e-worker")
    await wait_ready(f"http://{host}", api, args.api_workers)
    conn = await asyncpg.connect(env.dsn)
    labeller = Labeller(env.database, await postmaster_pid(conn))
    labeller.groups[api.pgid] = LABEL_API
    labeller.groups.update({w.pgid: LABEL_WORKER for w in workers})
    stream = EventStream("127.0.0.1", port, shop.api_key)
    await stream.open()
    client = rawhttp.Client("127.0.0.1", port, args.connections)
    state = Run(
        host=host,
        port=port,
        shop=shop,
        factory=OrderFactory(shop.webhook_secret, args.customers),
        client=client,
        stream=stream,
        conn=conn,
        labeller=labeller,
        rng=random.Random(args.seed),
        gap_max_s=args.gap_max,
    )
    steps: list[Step] = []
    notes: list[str] = []
    vacuum = AutovacuumStandIn(env.dsn, settings)
    try:
        vacuum.start()
        # Warm-up (the worker's start, the pools' connections), not judged.
        warm = Step(rate=20, seconds=2, first_id=WARMUP_BASE)
        await run_step(warm, state)
        sent = warm.orders
        if await wait_all_processed(conn, shop.id, sent, 60) >= 60:
            raise SystemExit(
                "the warm-up orders were not credited in 60 s:\n" + workers[0].log_tail()
            )
        next_id = ORDER_BASE
        for rate in args.rates:
            step = Step(rate=rate, seconds=args.seconds, first_id=next_id)
            next_id += step.orders + 1
            await run_step(step, state)
            sent += step.orders
            steps.append(step)
            assert step.cpu is not None
            if note := interference_note(f"e2e at {rate:g} orders/s", step.cpu):
                notes.append(note)
            if step.send_lag_s > LAG_NOTE_S:
                notes.append(
                    f"e2e at {rate:g} orders/s: the sender fell {1000 * step.send_lag_s:.0f} ms "
                    "behind its schedule (latencies still count from the due times)"
                )
            print(
                f"e2e {rate:g}/s: paid -> credit p50 {step.pct(50):.3f} p95 {step.pct(95):.3f} "
                f"p99 {step.pct(99):.3f} max {step.pct(100):.3f} s; "
                + ("passed" if step.passed else "FAILED: " + "; ".join(step.reasons)),
                file=sys.stderr,
                flush=True,
            )
            if not step.passed:
                break  # the ramp found its limit
        integrity, events, waited = await final_check(conn, shop.id, sent, args.final_drain_s)
        if stream.error:
            integrity.problems.append(stream.error)
        rss = {
            LABEL_API: peak_rss_of({api.pgid}),
            LABEL_WORKER: peak_rss_of({w.pgid for w in workers}),
        }
    finally:
        await vacuum.stop()
        await stream.close()
        await client.close()
        await conn.close()
        for w in workers:
            w.stop(timeout=15)
        api.stop(timeout=15)
    passing = [s for s in steps if s.passed]
    best = passing[-1] if passing else (steps[0] if steps else None)
    return {
        "steps": [s.summary() for s in steps],
        "warmup": warm.summary(),
        "highest_passing_rate": passing[-1].rate if passing else 0.0,
        "cpu_step_rate": best.rate if best else None,
        "cpu_ms_per_order": best.cpu_ms_per_order(SERVICE_LABELS) if best else math.nan,
        "orders_sent": sent,
        "final_wait_s": waited,
        "events": events,
        "integrity": integrity.as_dict(),
        "stream_events": dict(stream.counts),
        "peak_rss_mb": rss,
        "autovacuum_standin": {"runs": vacuum.runs, "seconds": round(vacuum.seconds, 2)},
        "notes": notes,
    }


def figures_of(result: dict[str, Any]) -> list[Figure]:
    figures = []
    for s in result["steps"]:
        section = f"end to end at {s['rate']:g} create+paid orders/s for {s['seconds']:g} s"
        latency, response = s["paid_to_credit_ms"], s["response_ms"]
        cpu = s["cpu_ms_per_order"]
        figures += [
            Figure(section, "orders", s["orders"]),
            Figure(section, "requests accepted (2xx)", s["http"].get("200 accepted", 0)),
            Figure(section, "webhook events stored", s["events_stored"]),
            Figure(section, "orders credited within the settle time", s["credited"]),
            Figure(
                section,
                "webhook answer p50 / p99 / max (open loop)",
                f"{response['50']:.1f} / {response['99']:.1f} / {response['100']:.1f}",
                "ms",
            ),
            Figure(section, "paid -> credit seen (SSE) p50", latency["50"], "ms"),
            Figure(section, "paid -> credit seen (SSE) p95", latency["95"], "ms"),
            Figure(section, "paid -> credit seen (SSE) p99", latency["99"], "ms"),
            Figure(section, "paid -> credit seen (SSE) max", latency["100"], "ms"),
            Figure(section, "sender max lag behind schedule", s["send_lag_ms"], "ms"),
            Figure(
                section, "CPU per credited order, API + worker + PostgreSQL", cpu["service"], "ms"
            ),
            Figure(
                section,
                "CPU per credited order: API / worker / PostgreSQL / Redis / driver",
                " / ".join(f"{cpu[label]:.2f}" for label in CPU_LABELS),
                "ms",
            ),
            Figure(section, "passed", "yes" if s["passed"] else "NO: " + "; ".join(s["reasons"])),
        ]
    integrity = result["integrity"]
    figures += [
        Figure(
            "end to end",
            "highest sustained rate (p95 <= 1 s, all credited)",
            result["highest_passing_rate"],
            "orders/s",
        ),
        Figure(
            "end to end",
            "whole shop after the ramp: orders processed",
            f"{integrity['processed']} / {integrity['expected']}",
        ),
        Figure(
            "end to end",
            "ledger credited / owed",
            f"{integrity['credited_minor']} / {integrity['owed_minor']}",
            "minor units",
        ),
        Figure(
            "end to end",
            "integrity",
            "ok" if integrity["ok"] else "PROBLEMS: " + "; ".join(integrity["problems"]),
        ),
        Figure(
            "end to end",
            "peak RSS API / worker (largest process)",
            " / ".join(f"{result['peak_rss_mb'][k]:.0f}" for k in (LABEL_API, LABEL_WORKER)),
            "MB",
        ),
    ]
    return figures


def parse_rates(text: str) -> list[float]:
    rates = [float(r) for r in text.split(",") if r.strip()]
    if not rates or any(r <= 0 for r in rates) or rates != sorted(rates):
        raise argparse.ArgumentTypeError("rising positive rates, e.g. 200,300,400")
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.e2e",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rates",
        type=parse_rates,
        default=list(RATES),
        help="create+paid orders/s of the steps, rising (default 100,…,700)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each step")
    parser.add_argument(
        "--gap-max", type=float, default=1.0, help="create -> paid: uniform 0..this s"
    )
    parser.add_argument("--seed", type=int, default=19, help="of the create -> paid gaps")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument(
        "--final-drain-s",
        type=float,
        default=90.0,
        help="longest wait for the last orders after the last step",
    )
    parser.add_argument("--port", type=int, default=0, help="API port; 0 picks a free one")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--logdir", type=Path, default=Path("/tmp"))
    parser.add_argument(
        "--pgbouncer",
        action="store_true",
        help="the API and workers through a PgBouncer this run starts (transaction pooling)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results-e2e.json")
    args = parser.parse_args(argv)
    env = Env(
        database="cashback_bench_ramp",
        redis="redis://127.0.0.1:6379/14",
        queue="cashback:bench-ramp",
        postgres=args.postgres,
    )
    settings = setup(env)
    procs = Processes()
    bouncer = None
    if args.pgbouncer:
        bouncer = PgBouncer.start(env.sqlalchemy_url, args.logdir / "e2e-pgbouncer")
        env.extra.update(bouncer.service_env(env.database))
    try:
        shop = create_shop(env, "bench-e2e.myshopify.com")
        result = asyncio.run(run(args, env, shop, procs, settings))
    finally:
        procs.stop_all()
        if bouncer is not None:
            bouncer.stop()
        release(env)
    result.update(
        postgres=settings,
        seed=args.seed,
        gap_max_s=args.gap_max,
        workers=args.workers,
        api_workers=args.api_workers,
        cpus=os.cpu_count(),
    )
    print(table(figures_of(result)))
    for note in result["notes"]:
        print(f"note: {note}", file=sys.stderr)
    write_results(args.out, result)
    if not result["integrity"]["ok"]:
        print("PROBLEMS: " + "; ".join(result["integrity"]["problems"]), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
