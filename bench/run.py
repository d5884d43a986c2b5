"""The benchmarks of a run (BENCHMARKS, at the end), their set-up, and the figures they yield.

Rules every figure keeps (see bench/README.md): throughput counts only 2xx answers whose event
is stored; latencies are measured open loop; paid -> credit ends when the credit is visible
after its commit (an SSE client of /v1/events); each run checks that every order was credited
exactly once and the ledger equals what is owed, and a problem fails the run; nothing is
extrapolated; a server that does not make commits durable is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from app import migrate
from bench import dashboard as dashboard_bench
from bench import drain as drain_bench
from bench import e2e as e2e_bench
from bench import program as program_bench
from bench import rawhttp
from bench.cpu import (
    LABEL_API,
    LABEL_KERNEL,
    LABEL_LOADGEN,
    LABEL_POSTGRES,
    LABEL_REDIS,
    OTHER,
    CpuMeter,
    CpuReport,
    Labeller,
    interference_note,
    peak_rss_of,
)
from bench.harness import REPO, free_port, take_lock
from bench.payloads import WEBHOOK_PATH, Delivery, OrderFactory, write_pool
from bench.pg import (
    DurabilityOff,
    durability_problem,
    postmaster_pid,
    recreate_database,
    server_settings,
    settings_notes,
)
from bench.procs import Process, Processes, cashback_command
from bench.stats import Figure, against, percentile

BENCH_DIR = Path(__file__).resolve().parent
WRK_SCRIPT = BENCH_DIR / "wrk.lua"

INTAKE_ORDER_BASE = 5_000_000_000_000
SUMMARY = "targets (issue #19)"
CEILING, OURS = "ceiling", "ours"

# The targets of issue #19, on this machine, in the same run.
RATE_TARGET = 700.0  # highest sustained create+paid orders/s, every order credited, p95 <= 1 s
RATE_MILESTONE = 500.0  # "500/s on the way"
CPU_PER_ORDER_TARGET_MS = 2.8  # API + worker + PostgreSQL, per credited order
INTAKE_RATIO_TARGET = 0.70  # intake of 1 API process / the no-I/O ceiling app's
INTAKE_P99_TARGET_MS = 25.0  # open loop, at INTAKE_RATIO_TARGET x the ceiling's rate
DASHBOARD_TARGET_MS = 50.0
DASHBOARD_TARGET_ORDERS = 10_000_000
RSS_TARGET_MB = 150.0  # peak RSS of each API and worker process under load
TIME_BUDGET_S = 590.0  # the whole run, setup included (make bench: under 10 minutes)

LOCK_MS = int((TIME_BUDGET_S + 60) * 1000)  # the queue's reservation outlives any run
MODULE_SETUP_S = 20.0  # a bench module's database, migrations, shop, API and workers
OVERHEAD_S = 40.0  # setup, start-ups, shutdowns: reserved out of the budget
INTAKE_RUN_OVERHEAD_S = 12.0  # a server's start, warm-up, the open-loop tail and stop
# Worst-case paces the time estimate assumes (a run that would not fit is refused up front).
BACKLOG_PACE = 250.0  # orders/s one worker process drains at least (256 with 1 core taken)
FINAL_DRAIN_S = 60.0  # after the failing ramp step, the longest wait for the last credits
PASSING_STEP_TAIL_S = 1.5  # a passing step's orders are credited this soon after its end
DASHBOARD_S_PER_ORDER = 8e-5  # seed + calls, on 2 busy cores (52 s for 1,000,000)

# The ramp: create+paid orders/s, rising; it stops at the first failing step.
# From 100/s: on this shared machine the service may not sustain 200/s (a full run at 200/s
# with 45% of a core taken by others: p95 3.4 s, falling behind), and 0 says nothing.
RAMP = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0)
# On 2 cores shared with PostgreSQL and the API, a second worker process has no core of its
# own: one does as well (create+paid at 200/s for 20 s: p95 97 ms with one, 107 ms with two;
# both sustain 250/s and fall behind at 350/s). A backlog drains 1.25-1.34x faster with two.
SUSTAINED_WORKERS = 1
BACKLOG_ORDERS = 15_000  # 100,000 drained for 170 s + 135 s: shrunk to fit the 10 minutes

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Config:
    intake_processes: tuple[int, ...] = (1, 2)  # ceiling and service, each with N processes
    only: tuple[str, ...] = ()  # names in BENCHMARKS; empty: all
    loadgen: str = "auto"  # auto | wrk | python (the closed-loop throughput runs)
    wrk_threads: int = 2
    loadgen_processes: int = 2
    connections: int = 64
    intake_seconds: int = 10
    open_loop_seconds: float = 5.0  # intake latency, at INTAKE_RATIO_TARGET x the ceiling
    pool_size: int = 30_000  # distinct orders: a run of ours at 3,000 req/s repeats none
    backlog_orders: int = BACKLOG_ORDERS
    ramp: tuple[float, ...] = RAMP
    step_seconds: float = 20.0
    seed: int = 19  # of the create -> paid gaps
    gap_max_s: float = 1.0
    api_workers: int = 1  # of the end-to-end ramp
    workers: int = SUSTAINED_WORKERS
    customers: int = 1000
    postgres: str = "postgresql://postgres@127.0.0.1:5432"
    database: str = "cashback_bench"
    redis: str = "redis://127.0.0.1:6379/11"
    queue: str = "cashback:bench"
    db_pool_size: int | None = None
    worker_max_jobs: int | None = None
    calc_iterations: int = 2000
    dashboard_orders: int = 200_000  # the target is at 10,000,000: `make bench-dashboard`
    dashboard_calls: int = 100
    keep_files: bool = False
    service_log_level: str = "WARNING"
    out: Path = BENCH_DIR / "results.json"

    def validate(self) -> None:
        if not _DB_NAME.match(self.database):
            raise BenchError(f"not a plain database name: {self.database!r}")
        if self.connections < 1 or self.customers < 1 or self.workers < 1:
            raise BenchError("connections, customers and workers must be at least 1")
        if self.intake_seconds < 1 or self.step_seconds <= 0 or self.open_loop_seconds <= 0:
            raise BenchError("durations must be positive")
        if not self.ramp or list(self.ramp) != sorted(self.ramp) or self.ramp[0] <= 0:
            raise BenchError("the ramp's rates must be positive and rising")
        if self.pool_size < self.connections:
            raise BenchError("the pool must hold at least one body per connection")
        timed = self.estimated_seconds()
        if timed + OVERHEAD_S > TIME_BUDGET_S:
            raise BenchError(
                f"the benchmarks would take up to {timed:.0f} s; with {OVERHEAD_S:.0f} s of "
                f"set-up the run could pass its {TIME_BUDGET_S:.0f} s budget"
            )

    def estimated_seconds(self) -> float:
        """The longest the benchmarks may take (every ramp step run, slow paces)."""

        def on(name: str) -> bool:
            return not self.only or name in self.only

        intake_run = self.intake_seconds + INTAKE_RUN_OVERHEAD_S
        open_loops = 2 * (1 in self.intake_processes) * self.open_loop_seconds
        # Every step but the last passes (the ramp stops at the first failure), which waits
        # its full settle time, and then for the backlog it left.
        step = self.step_seconds + self.gap_max_s + PASSING_STEP_TAIL_S
        ramp = len(self.ramp) * step + e2e_bench.SETTLE_S + FINAL_DRAIN_S
        return (
            on("intake") * (2 * len(self.intake_processes) * intake_run + open_loops)
            + on("backlog") * (MODULE_SETUP_S + 2 * (self.backlog_limit_s + 10))
            + on("sustained") * (MODULE_SETUP_S + 10 + ramp)
            + on("calculation") * 5
            + on("dashboard") * self.dashboard_orders * DASHBOARD_S_PER_ORDER
        )

    @property
    def backlog_limit_s(self) -> float:
        """A backlog not drained by then fails (nothing is extrapolated)."""
        return max(self.backlog_orders / BACKLOG_PACE, 20.0)

    def dsn(self, database: str | None = None) -> str:
        return f"{self.postgres.rstrip('/')}/{database or self.database}"

    def database_url(self, database: str | None = None) -> str:
        return self.dsn(database).replace("postgresql://", "postgresql+asyncpg://", 1)


@dataclass(frozen=True, slots=True)
class Shop:
    id: int
    domain: str
    secret: str


@dataclass
class LoadResult:
    """A load generator's run against one server."""

    tool: str
    sent: int
    completed: int  # answered
    accepted: int  # 2xx saying "accepted"
    non2xx: int
    socket_errors: int
    duration_s: float
    latencies_ms: dict[str, float]  # "50", "95", "99", "100"
    cpu_s: float  # the load generator's own CPU
    max_lag_ms: float = 0.0  # open loop only
    stored: int | None = None  # events read back from the inbox (the service only)

    @property
    def counted(self) -> int:
        """What throughput counts: accepted answers whose event is stored."""
        return self.accepted if self.stored is None else min(self.accepted, self.stored)

    @property
    def rate(self) -> float:
        return self.counted / self.duration_s if self.duration_s else 0.0

    @property
    def clean(self) -> bool:
        return not self.non2xx and not self.socket_errors and self.accepted == self.completed

    def failures(self) -> str:
        return (
            f"{self.non2xx} non-2xx, {self.socket_errors} socket errors/timeouts, "
            f"{self.completed - self.accepted - self.non2xx} 2xx not accepted"
        )


def error_summary(stderr: str, lines: int = 6) -> str:
    """The last lines of a traceback, without rich's boxes."""
    kept = [
        line.rstrip()
        for line in stderr.splitlines()
        if line.strip() and not line.lstrip().startswith(("│", "╭", "╰"))
    ]
    return "\n".join(kept[-lines:])


def wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "wrk"


def cpu_figures(section: str, report: CpuReport, labels: list[str]) -> list[Figure]:
    """CPU per component over the phase; 'other' is whatever else ran on the machine."""
    figures = [
        Figure(
            section,
            f"CPU {label}",
            report.pct_of_core(label),
            f"% of 1 core ({report.kernel_share_pct(label):.0f}% of it in the kernel)",
        )
        for label in [*labels, LABEL_KERNEL, OTHER]
    ]
    cores = os.cpu_count() or 1
    split = report.machine_split_pct
    in_irq = split.get("irq", 0.0) + split.get("softirq", 0.0)
    figures += [
        Figure(
            section,
            "CPU not attributed",
            report.unattributed_pct_of_core(cores),
            "% of 1 core (processes that came and went)",
        ),
        Figure(
            section,
            "machine CPU busy",
            report.machine_busy_pct,
            f"% of {cores} cores (interrupts {in_irq:.0f}%, steal {split.get('steal', 0.0):.0f}%)",
        ),
    ]
    return figures


def latency_figures(section: str, what: str, ms: dict[str, float]) -> list[Figure]:
    names = {"50": "p50", "95": "p95", "99": "p99", "100": "max"}
    return [Figure(section, f"{what} {names[p]}", ms[p], "ms") for p in names if p in ms]


def pcts_ms(latencies_s: list[float]) -> dict[str, float]:
    return {str(p): 1000 * percentile(latencies_s, p) for p in (50, 95, 99, 100)}


class Bench:
    def __init__(self, cfg: Config, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.procs = Processes()
        self.env = self._service_env()
        self.figures: list[Figure] = []
        self.summary: list[Figure] = []  # the figures the issue sets targets for
        self.details: dict[str, Any] = {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
            "problems": [],
            "notes": [],
        }
        self.intake_shop: Shop | None = None
        self.labeller = Labeller(cfg.database)
        self.peak_rss_mb: dict[str, float] = {}  # "API" / "worker": the largest process
        self.ceiling_rates: dict[int, float] = {}  # intake throughput of the ceiling app
        self.lock: str | None = None  # the Redis key that reserves the queue for this run

    def problem(self, text: str) -> None:
        """Something that makes the run's figures untrustworthy: the run fails."""
        self.details["problems"].append(text)

    def note(self, text: str | None) -> None:
        """Something a reader of the figures should know (interference, a lagging sender)."""
        if text:
            self.details["notes"].append(text)

    def record_rss(self, what: str, mb: float) -> None:
        self.peak_rss_mb[what] = max(self.peak_rss_mb.get(what, 0.0), mb)

    # -- set-up (synchronous: alembic runs its own event loop) ------------------------------

    def _service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CASHBACK_DATABASE_URL=self.cfg.database_url(),
            CASHBACK_REDIS_URL=self.cfg.redis,
            CASHBACK_QUEUE_NAME=self.cfg.queue,
            CASHBACK_LOG_LEVEL=self.cfg.service_log_level,
            # This checkout's code: the shared virtualenv's editable install points at
            # whichever worktree last ran `uv run`/`uv sync`, and `cashback` imports from there.
            PYTHONPATH=str(REPO),
        )
        if self.cfg.db_pool_size is not None:
            env["CASHBACK_DB_POOL_SIZE"] = str(self.cfg.db_pool_size)
        if self.cfg.worker_max_jobs is not None:
            env["CASHBACK_WORKER_MAX_JOBS"] = str(self.cfg.worker_max_jobs)
        return env

    def setup(self) -> None:
        began = time.perf_counter()
        asyncio.run(self._check_server())  # first: refuse a server that loses commits
        asyncio.run(self._reserve_queue())  # then: a concurrent run must not lose its database
        asyncio.run(recreate_database(self.cfg.postgres.rstrip("/"), self.cfg.database))
        migrate.upgrade(self.cfg.database_url())
        self.intake_shop = self._create_shop("bench-intake.myshopify.com")
        self.details["setup_s"] = round(time.perf_counter() - began, 2)

    async def _check_server(self) -> None:
        try:
            conn = await asyncpg.connect(self.cfg.dsn("postgres"))
        except OSError as exc:
            raise BenchError(f"PostgreSQL at {self.cfg.postgres} is not reachable: {exc}") from exc
        try:
            settings = await server_settings(conn)
            self.labeller.postmaster = await postmaster_pid(conn)
        finally:
            await conn.close()
        self.details["postgres"] = settings
        s = "PostgreSQL server (SHOW)"
        self.figures += [Figure(s, name, value) for name, value in settings.items()]
        if problem := durability_problem(settings):
            raise DurabilityOff(problem)
        for line in settings_notes(settings):
            self.note(line)

    def _create_shop(self, domain: str) -> Shop:
        secret = "whsec_bench_" + secrets.token_urlsafe(18)
        argv = [*cashback_command(), "shops", "create", "--domain", domain]
        argv += ["--webhook-secret", secret, "--json"]
        done = subprocess.run(
            argv, env=self.env, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise BenchError(f"`cashback shops create` failed: {error_summary(done.stderr)}")
        created = json.loads(done.stdout.strip().splitlines()[-1])
        return Shop(int(created["id"]), str(created["domain"]), str(created["webhook_secret"]))

    # -- the run --------------------------------------------------------------------------------

    async def run(self) -> None:
        self.db = await asyncpg.connect(self.cfg.dsn())
        try:
            for name, benchmark in BENCHMARKS:
                if not self.cfg.only or name in self.cfg.only:
                    began = time.perf_counter()
                    print(f"bench: {name} …", file=sys.stderr, flush=True)
                    await benchmark(self)
                    self.details.setdefault("seconds", {})[name] = round(
                        time.perf_counter() - began, 1
                    )
        finally:
            self.procs.stop_all()
            await self.db.close()

    async def _reserve_queue(self) -> None:
        """Take the queue for this run (a lock that outlives the longest run, in case this one
        is killed), then clear what an earlier run may have left in it."""
        lock = self.cfg.queue + ":bench-lock"
        redis = Redis.from_url(self.cfg.redis)
        try:
            if (left := await take_lock(redis, lock, LOCK_MS)) is not None:
                raise BenchError(
                    f"another run holds Redis queue {self.cfg.queue!r} (for {left:.0f} s more "
                    f"at most; delete key {lock!r} if that run is dead, or choose --queue)"
                )
            self.lock = lock
            await self.clear_queue_keys(redis)
        except (RedisError, OSError) as exc:
            raise BenchError(f"Redis at {self.cfg.redis} is not reachable: {exc}") from exc
        finally:
            await redis.aclose()

    def release(self) -> None:
        """Clear the queue's keys and give the queue up (call once the processes are gone)."""
        if self.lock is None:
            return

        async def release(lock: str) -> None:
            redis = Redis.from_url(self.cfg.redis)
            try:
                await self.clear_queue_keys(redis)
                await redis.delete(lock)
            finally:
                await redis.aclose()

        with contextlib.suppress(RedisError, OSError):
            asyncio.run(release(self.lock))
        self.lock = None

    async def clear_queue_keys(self, redis: Redis) -> int:
        """Delete the queue and every arq key of its jobs. Left-overs matter: the database is
        new, so event ids start again at 1, and arq silently skips enqueueing a job whose id
        still has a key (kept up to a day), so a stale `arq:job:<queue>:event:1` would swallow
        the new event 1's job."""
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.cfg.queue)
        keys: list[bytes | str] = [self.cfg.queue, self.cfg.queue + ":health-check"]
        for kind in ("job", "in-progress", "retry", "result"):
            keys += [k async for k in redis.scan_iter(f"arq:{kind}:{pattern}:*", 1000)]
        for at in range(0, len(keys), 3000):
            await redis.delete(*keys[at : at + 3000])
        return len(keys) - 2

    async def start_server(self, target: str, port: int, workers: int, secret: str) -> Process:
        """`cashback api`, or the no-I/O ceiling app (labelled as the API: it stands in for it,
        and is never up at the same time)."""
        if target == OURS:
            argv = [*cashback_command(), "api", "--host", "127.0.0.1", "--port", str(port)]
            argv += ["--workers", str(workers)]
            env = self.env
        else:
            argv = [sys.executable, "-m", "uvicorn", "bench.ceiling:app", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
            argv += ["--log-level", "warning", "--timeout-worker-healthcheck", "60"]
            env = dict(os.environ, BENCH_CEILING_SECRET=secret, PYTHONPATH=str(REPO))
        server = self.procs.start(target, argv, env, self.workdir / f"{target}-{port}.log", REPO)
        self.labeller.groups[server.pgid] = LABEL_API
        await self.wait_ready(server, port, workers)
        return server

    async def wait_ready(self, server: Process, port: int, workers: int) -> None:
        from bench.harness import wait_ready

        try:
            await wait_ready(f"http://127.0.0.1:{port}", server, workers)
        except SystemExit as exc:
            raise BenchError(f"{server.name}: {exc}") from exc

    # -- intake ---------------------------------------------------------------------------------

    async def intake(self) -> None:
        """The ceiling app and the service, 1 then 2 processes each, under the same load."""
        shop = self.intake_shop
        assert shop is not None
        cfg = self.cfg
        factory = OrderFactory(shop.secret, cfg.customers)
        began = time.perf_counter()
        pool = self.workdir / "intake-pool.bin"
        pool_bytes = write_pool(
            pool, [factory.delivery(INTAKE_ORDER_BASE + i) for i in range(cfg.pool_size)]
        )
        self.details["intake_pool"] = {
            "bodies": cfg.pool_size,
            "bytes": pool_bytes,
            "generated_in_s": round(time.perf_counter() - began, 2),
        }
        warm = [factory.delivery(INTAKE_ORDER_BASE + cfg.pool_size + i) for i in range(64)]
        for processes in cfg.intake_processes:
            ceiling, floor = await self.intake_run(CEILING, processes, pool, shop, warm)
            ours, open_loop = await self.intake_run(OURS, processes, pool, shop, warm)
            if open_loop is None or floor is None:
                continue  # the targets are for one API process
            if floor.latencies_ms["99"] > INTAKE_P99_TARGET_MS / 2:
                self.note(
                    f"intake: the no-I/O ceiling app's own p99 at the open-loop rate is "
                    f"{floor.latencies_ms['99']:.0f} ms (the sender's and the machine's floor): "
                    "the service's p99 cannot be judged below it"
                )
            ratio = ours.rate / ceiling.rate if ceiling.rate else math.nan
            self.summary += [
                against(
                    SUMMARY,
                    "intake, 1 API process: stored 2xx/s over the no-I/O ceiling app's",
                    ratio,
                    f"({ours.rate:,.0f} / {ceiling.rate:,.0f} req/s)",
                    ">=",
                    INTAKE_RATIO_TARGET,
                    also=ours.clean and ceiling.clean,
                    why_not="requests failed",
                ),
                against(
                    SUMMARY,
                    f"intake, 1 API process: p99 open loop at {INTAKE_RATIO_TARGET:.2f} x the "
                    f"ceiling ({open_loop.sent / cfg.open_loop_seconds:,.0f} req/s)",
                    open_loop.latencies_ms["99"],
                    "ms",
                    "<=",
                    INTAKE_P99_TARGET_MS,
                    also=open_loop.clean and open_loop.stored == open_loop.accepted,
                    why_not="requests failed or not stored",
                ),
            ]

    async def intake_run(
        self, target: str, processes: int, pool: Path, shop: Shop, warm: list[Delivery]
    ) -> tuple[LoadResult, LoadResult | None]:
        """One server under the closed-loop load (its throughput), then, with one process,
        open loop at INTAKE_RATIO_TARGET x the ceiling's throughput (its latency; the target
        is for one process, and two python senders cannot keep a schedule of two processes'
        rate: 7,000 req/s to the ceiling had a p50 of 3 s); then stopped."""
        run = f"{target}{processes}"
        port = free_port()
        server = await self.start_server(target, port, processes, shop.secret)
        try:
            await self.warm_up(port, shop, warm, f"warm-{run}")
            meter = CpuMeter(self.labeller)
            meter.start()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            closed = await self.closed_loop(pool, shop, port, run)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            exited = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
            cpu = meter.stop({LABEL_LOADGEN: exited})
            if target == CEILING:
                self.ceiling_rates[processes] = closed.rate
            rate = INTAKE_RATIO_TARGET * self.ceiling_rates.get(processes, closed.rate)
            open_loop = None
            if processes == 1:
                open_loop = await self.run_python_loadgen(pool, shop, port, f"ol-{run}", rate)
            rss = peak_rss_of({server.pgid})
        finally:
            server.stop(timeout=15)
            del self.labeller.groups[server.pgid]
        self.note(interference_note(f"intake {run}", cpu))
        if target == OURS:
            closed.stored = await self.events_stored(shop, f"{run}-")
            if open_loop is not None:
                open_loop.stored = await self.events_stored(shop, f"ol-{run}-")
            self.record_rss("API", rss)
        self.report_intake(target, processes, closed, open_loop, cpu, rss)
        return closed, open_loop

    async def warm_up(self, port: int, shop: Shop, warm: list[Delivery], label: str) -> None:
        """The server's pools and caches, outside the measurement."""
        client = rawhttp.Client("127.0.0.1", port, self.cfg.connections)
        try:
            for n, d in enumerate(warm):
                raw = rawhttp.post_request(
                    f"127.0.0.1:{port}",
                    WEBHOOK_PATH,
                    d.headers(shop.domain, f"{label}-{n}"),
                    d.body,
                )
                await client.request(raw)
        finally:
            await client.close()

    async def events_stored(self, shop: Shop, prefix: str) -> int:
        """Events of the shop whose key starts with `prefix` (a run's), read back from the inbox."""
        return int(
            await self.db.fetchval(
                "SELECT count(*) FROM webhook_events WHERE shop_id = $1 "
                "AND starts_with(event_key, $2) AND status <> 'failed'",
                shop.id,
                prefix,
            )
        )

    def report_intake(
        self,
        target: str,
        processes: int,
        closed: LoadResult,
        open_loop: LoadResult | None,
        cpu: CpuReport,
        rss: float,
    ) -> None:
        run = f"{target}{processes}"
        self.details.setdefault("intake", {})[run] = {
            "closed_loop": asdict(closed),
            "open_loop": asdict(open_loop) if open_loop else None,
            "peak_rss_mb": rss,
            "cpu": asdict(cpu),
        }
        ceiling = self.ceiling_rates.get(processes)
        label = "the service (`cashback api`)" if target == OURS else "no-I/O ceiling app"
        s = f"intake: {label}, {processes} process(es)"
        per_request = 1000 * cpu.by_label_s.get(LABEL_API, 0.0) / max(closed.completed, 1)
        self.figures += [
            Figure(s, "closed loop: load generator", closed.tool),
            Figure(
                s,
                "closed loop: connections / duration",
                f"{self.cfg.connections} / {closed.duration_s:.1f}",
                "- / s",
            ),
            Figure(
                s,
                "closed loop: answers / accepted 2xx",
                f"{closed.completed:,} / {closed.accepted:,}",
            ),
            Figure(
                s,
                "closed loop: non-2xx / socket errors",
                f"{closed.non2xx} / {closed.socket_errors}",
            ),
        ]
        if closed.stored is not None:
            self.figures.append(Figure(s, "closed loop: events stored (read back)", closed.stored))
        self.figures += [
            Figure(s, "closed loop: throughput (accepted and stored)", closed.rate, "req/s"),
            *(
                [Figure(s, "closed loop: throughput / ceiling's", closed.rate / ceiling, "")]
                if target == OURS and ceiling
                else []
            ),
            Figure(
                s,
                "closed loop: latency p50 / p99 (coordinated omission: see open loop)",
                f"{closed.latencies_ms['50']:.1f} / {closed.latencies_ms['99']:.1f}",
                "ms",
            ),
            Figure(
                s,
                "closed loop: CPU load generator",
                100 * closed.cpu_s / closed.duration_s,
                "% of 1 core",
            ),
            Figure(s, "closed loop: server CPU per answer", per_request, "ms"),
            Figure(s, "server peak RSS (largest process)", rss, "MB"),
        ]
        if open_loop is not None:
            self.figures += [
                Figure(
                    s,
                    "open loop: rate / sent / accepted",
                    f"{open_loop.sent / self.cfg.open_loop_seconds:,.0f}"
                    f" / {open_loop.sent:,} / {open_loop.accepted:,}",
                    "req/s / - / -",
                ),
                *latency_figures(s, "open loop: latency", open_loop.latencies_ms),
                Figure(s, "open loop: sender max lag behind schedule", open_loop.max_lag_ms, "ms"),
            ]
            if open_loop.stored is not None:
                self.figures.append(
                    Figure(s, "open loop: events stored (read back)", open_loop.stored)
                )
        self.figures += cpu_figures(s, cpu, [LABEL_API, LABEL_LOADGEN, LABEL_POSTGRES, LABEL_REDIS])
        for phase, result in (("closed loop", closed), ("open loop", open_loop)):
            if result is None:
                continue
            if not result.clean:
                self.problem(f"intake {run}, {phase}: {result.failures()}")
            if result.stored is not None and result.stored < result.accepted:
                self.problem(
                    f"intake {run}, {phase}: {result.accepted - result.stored} accepted answers "
                    "whose event is not stored"
                )

    async def wait_exit(self, proc: Process, limit_s: float) -> int:
        deadline = time.perf_counter() + limit_s
        while proc.running:
            if time.perf_counter() > deadline:
                proc.stop()
                raise BenchError(f"{proc.name} did not finish in {limit_s:.0f} s")
            await asyncio.sleep(0.1)
        code: int = proc.popen.returncode
        return code

    async def closed_loop(self, pool: Path, shop: Shop, port: int, run: str) -> LoadResult:
        tool = self.cfg.loadgen
        wrk = shutil.which("wrk")
        if tool == "auto":
            tool = "wrk" if wrk else "python"
        if tool == "wrk":
            if wrk is None:
                raise BenchError("--loadgen wrk: `wrk` is not on PATH (apt-get install wrk)")
            return await self.run_wrk(wrk, pool, shop, port, run)
        return await self.run_python_loadgen(pool, shop, port, run)

    async def run_wrk(self, wrk: str, pool: Path, shop: Shop, port: int, run: str) -> LoadResult:
        cfg = self.cfg
        out = self.workdir / f"wrk-{run}.json"
        env = dict(
            os.environ,
            BENCH_POOL=str(pool),
            BENCH_DOMAIN=shop.domain,
            BENCH_WRK_OUT=str(out),
            BENCH_RUN=run,  # event ids are unique across the runs of one database
        )
        threads = max(min(cfg.wrk_threads, cfg.connections), 1)
        argv = [wrk, f"-t{threads}", f"-c{cfg.connections}", f"-d{cfg.intake_seconds}s"]
        url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        argv += ["--timeout", "10s", "-s", str(WRK_SCRIPT), url]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = self.procs.start("wrk", argv, env, self.workdir / f"wrk-{run}.log", REPO)
        self.labeller.groups[proc.pgid] = LABEL_LOADGEN
        code = await self.wait_exit(proc, cfg.intake_seconds + 60)
        del self.labeller.groups[proc.pgid]
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if code != 0 or not out.exists():
            raise BenchError(f"wrk failed (exit {code}):\n{proc.log_tail()}")
        data = json.loads(out.read_text())
        cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        errors = sum(int(data[k]) for k in ("connect_errors", "read_errors", "write_errors"))
        return LoadResult(
            tool=f"{wrk_version(wrk)} ({threads} threads, Lua)",
            sent=int(data["sent"]),
            completed=int(data["completed"]),
            accepted=int(data["accepted"]),
            non2xx=int(data["non2xx"]),
            socket_errors=errors + int(data["timeouts"]),
            duration_s=float(data["duration_us"]) / 1e6,
            latencies_ms={
                "50": float(data["p50_us"]) / 1000,
                "99": float(data["p99_us"]) / 1000,
                "100": float(data["max_us"]) / 1000,
            },
            cpu_s=cpu,
        )

    async def run_python_loadgen(
        self, pool: Path, shop: Shop, port: int, run: str, rate: float = 0.0
    ) -> LoadResult:
        """`bench.loadgen` processes: closed loop, or open loop at `rate` in all (shared)."""
        cfg = self.cfg
        count = max(min(cfg.loadgen_processes, cfg.connections), 1)
        seconds = cfg.open_loop_seconds if rate else cfg.intake_seconds
        start_at = time.time() + 2.5  # every process loads its pool before this
        procs: list[tuple[Process, Path]] = []
        for n in range(count):
            conns = cfg.connections // count + (1 if n < cfg.connections % count else 0)
            out = self.workdir / f"loadgen-{run}-{n}.json"
            argv = [sys.executable, "-m", "bench.loadgen", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--domain", shop.domain, "--pool", str(pool)]
            argv += ["--out", str(out), "--connections", str(conns)]
            argv += ["--duration", str(seconds), "--start-at", f"{start_at:.3f}"]
            argv += ["--label", f"{run}-py{n}", "--offset", str(n * cfg.pool_size // count)]
            argv += ["--rate", f"{rate / count:.3f}"]
            proc = self.procs.start(
                f"loadgen-{n}", argv, dict(os.environ), out.with_suffix(".log"), REPO
            )
            self.labeller.groups[proc.pgid] = LABEL_LOADGEN
            procs.append((proc, out))
        latencies: list[float] = []
        totals = dict.fromkeys(("completed", "sent", "accepted", "non2xx", "errors"), 0)
        cpu = wall = lag = 0.0
        for proc, out in procs:
            code = await self.wait_exit(proc, seconds + 60)
            del self.labeller.groups[proc.pgid]
            if code != 0 or not out.exists():
                raise BenchError(f"{proc.name} failed (exit {code}):\n{proc.log_tail()}")
            data = json.loads(out.read_text())
            latencies += data["latencies_s"]
            for key in totals:
                totals[key] += int(data[key])
            cpu += float(data["cpu_s"])
            wall = max(wall, float(data["wall_s"]))
            lag = max(lag, float(data["max_lag_s"]))
        mode = f"open loop, {rate:,.0f} req/s" if rate else "closed loop"
        return LoadResult(
            tool=f"python asyncio ({count} processes, raw sockets, {mode})",
            sent=totals["sent"],
            completed=totals["completed"],
            accepted=totals["accepted"],
            non2xx=totals["non2xx"],
            socket_errors=totals["errors"],
            duration_s=wall,
            latencies_ms=pcts_ms(latencies),
            cpu_s=cpu,
            max_lag_ms=1000 * lag,
        )

    async def module(self, name: str, *args: str) -> dict[str, Any]:
        """Run `python -m bench.<name>` (its own database, queue and processes; its table to a
        log, its progress lines to stderr) and read the JSON it writes."""
        out = self.workdir / f"results-{name}.json"
        command = [sys.executable, "-m", f"bench.{name}", *args]
        command += ["--postgres", self.cfg.postgres, "--logdir", str(self.workdir)]
        command += ["--out", str(out)]
        with (self.workdir / f"{name}.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(*command, stdout=log, env=self.env)
            code = await process.wait()
        if code not in (0, 1) or not out.exists():  # 1: it ran, and found a problem
            raise BenchError(f"bench.{name} failed (exit {code}): {' '.join(command)}")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


# -- the list of benchmarks ---------------------------------------------------------------------


async def run_backlog(bench: Bench) -> None:
    """A stored backlog drained by 1 then 2 worker processes, to the last credit."""
    cfg = bench.cfg
    result = await bench.module(
        "drain",
        "--orders",
        str(cfg.backlog_orders),
        "--processes",
        "1,2",
        "--limit-s",
        f"{cfg.backlog_limit_s:g}",
    )
    bench.details["backlog"] = result
    bench.figures += drain_bench.figures_of(result["results"])
    for r in result["results"]:
        bench.record_rss("worker", r["worker_peak_rss_mb"])
        for problem in r["problems"]:
            bench.problem(f"backlog, {r['workers']} worker process(es): {problem}")
    for note in result["notes"]:
        bench.note(note)


async def run_sustained(bench: Bench) -> None:
    """create + paid per order, a ramp of rising rates to the first that fails (1 API process,
    SUSTAINED_WORKERS worker processes), paid -> credit seen on a real SSE client."""
    cfg = bench.cfg
    result = await bench.module(
        "e2e",
        "--rates",
        ",".join(f"{r:g}" for r in cfg.ramp),
        "--seconds",
        f"{cfg.step_seconds:g}",
        "--seed",
        str(cfg.seed),
        "--gap-max",
        f"{cfg.gap_max_s:g}",
        "--workers",
        str(cfg.workers),
        "--api-workers",
        str(cfg.api_workers),
        "--final-drain-s",
        f"{FINAL_DRAIN_S:g}",
    )
    bench.details["sustained"] = result
    bench.figures += e2e_bench.figures_of(result)
    integrity = result["integrity"]
    for problem in integrity["problems"]:
        bench.problem(f"end to end: {problem}")
    for note in result["notes"]:
        bench.note(note)
    bench.record_rss("API", result["peak_rss_mb"][LABEL_API])
    bench.record_rss("worker", result["peak_rss_mb"]["worker"])
    steps = result["steps"]
    rate = float(result["highest_passing_rate"])
    failed = next((s for s in steps if not s["passed"]), None)
    reached = f"{failed['rate']:g} failed" if failed else f"all of {len(steps)} steps passed"
    for limit in (RATE_TARGET, RATE_MILESTONE):
        bench.summary.append(
            against(
                SUMMARY,
                "highest sustained create+paid rate, every order credited, p95 <= 1 s"
                + ("" if limit == RATE_TARGET else " (on the way)"),
                rate,
                f"orders/s ({reached})",
                ">=",
                limit,
                also=integrity["ok"],
                why_not="integrity problems",
            )
        )
    at = result["cpu_step_rate"]
    bench.summary.append(
        against(
            SUMMARY,
            f"CPU per credited order, API + worker + PostgreSQL (/proc), at {at:g} orders/s",
            float(result["cpu_ms_per_order"] or math.nan),
            "ms",
            "<=",
            CPU_PER_ORDER_TARGET_MS,
        )
    )


async def run_calculation(bench: Bench) -> None:
    """A 100-line order against a 50-rule program, in this process (no I/O)."""
    figures = await asyncio.to_thread(program_bench.bench_calculation, bench.cfg.calc_iterations)
    bench.details["calculation"] = figures
    s = "calculation (100-line order, 50 rules)"
    mean = figures["calc_100_lines_50_rules_mean_ms"]
    bench.figures += [
        Figure(s, "iterations", bench.cfg.calc_iterations),
        against(s, "mean", mean, "ms", "<=", 1.0),
        Figure(s, "median", figures["calc_100_lines_50_rules_median_ms"], "ms"),
        Figure(s, "p99", figures["calc_100_lines_50_rules_p99_ms"], "ms"),
        Figure(s, "program compile (once per version)", figures["program_compile_ms"], "ms"),
    ]


async def run_dashboard(bench: Bench) -> None:
    """The dashboard of a shop with `dashboard_orders` orders, in a database of its own; the
    target's 10,000,000 orders are `make bench-dashboard`'s (its last result is shown)."""
    cfg = bench.cfg
    figures = await dashboard_bench.run(
        cfg.postgres.rstrip("/"),
        cfg.dashboard_orders,
        cfg.dashboard_calls,
        database=f"{cfg.database}_dashboard_small",  # not `make bench-dashboard --keep`s
    )
    bench.details["dashboard"] = figures
    bench.figures += dashboard_bench.figures_of(figures)


def dashboard_target(bench: Bench) -> None:
    """The dashboard target from `make bench-dashboard`'s last result, dated: its 10,000,000
    orders take minutes to seed, more than this run's budget."""
    name = f"dashboard p95 at {DASHBOARD_TARGET_ORDERS:,} orders"
    last = dashboard_bench.last_result()
    if last is None or last.get("orders", 0) < DASHBOARD_TARGET_ORDERS:
        bench.summary.append(
            Figure(
                SUMMARY,
                name,
                math.nan,
                "ms (not measured: run `make bench-dashboard`)",
                target=f"<= {DASHBOARD_TARGET_MS:g}",
                passed=None,
            )
        )
        return
    bench.summary.append(
        against(
            SUMMARY,
            name,
            float(last["dashboard_p95_ms"]),
            f"ms (`make bench-dashboard`, {last.get('measured_at', '?')}, "
            f"commit {last.get('commit', '?')})",
            "<=",
            DASHBOARD_TARGET_MS,
        )
    )


def finish(bench: Bench, total_s: float) -> None:
    """The targets that gather several benchmarks: memory, integrity, failed requests, time."""
    dashboard_target(bench)
    for what in ("API", "worker"):
        if what in bench.peak_rss_mb:
            bench.summary.append(
                against(
                    SUMMARY,
                    f"peak RSS per {what} process under load (VmHWM, largest)",
                    bench.peak_rss_mb[what],
                    "MB",
                    "<=",
                    RSS_TARGET_MB,
                )
            )
    problems = bench.details["problems"]
    bench.summary += [
        Figure(
            SUMMARY,
            "every run: all requests accepted and stored, every order credited exactly once, "
            "ledger = owed",
            "yes" if not problems else f"NO: {len(problems)} problem(s), listed below",
            target="yes",
            passed=not problems,
        ),
        against(SUMMARY, "whole run (make bench)", total_s, "s", "<=", 600.0),
    ]


# Each benchmark is an async function of the Bench, run in this order (`--only` picks some).
# To add one: write `async def run_x(bench: Bench) -> None` (in its own module if you like),
# append Figures to `bench.figures` (its own section) and the figures that have a target to
# `bench.summary` (section SUMMARY, `against(...)`), raw data to `bench.details[...]`, what
# makes the run untrustworthy to `bench.problem(...)`, and register it here; stop what you start.
BENCHMARKS: list[tuple[str, Callable[[Bench], Awaitable[None]]]] = [
    ("intake", Bench.intake),
    ("backlog", run_backlog),
    ("sustained", run_sustained),
    ("calculation", run_calculation),
    ("dashboard", run_dashboard),
]
