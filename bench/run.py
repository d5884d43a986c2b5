"""The benchmarks of a run (BENCHMARKS, at the end), their set-up, and the figures they yield."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from app import migrate
from bench import dashboard as dashboard_bench
from bench import pooler, rawhttp
from bench import program as program_bench
from bench.cpu import NO_PROC, OTHER, CpuMeter, CpuReport, Proc, peak_rss_mb
from bench.cpu import processes as processes_by_pid
from bench.payloads import WEBHOOK_PATH, Delivery, OrderFactory, write_pool
from bench.procs import Process, Processes, cashback_command
from bench.stats import Figure, percentile

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
WRK_SCRIPT = BENCH_DIR / "wrk.lua"

# Shopify order ids of each phase: disjoint, so each phase's orders are told apart in the DB.
INTAKE_ORDER_BASE = 5_000_000_000_000
WARMUP_ORDER_BASE = 6_000_000_000_000
E2E_ORDER_BASE = 7_000_000_000_000
WARMUP_ORDERS = 20
WARMUP_RATE = 20.0

SUMMARY = "targets (issue #8)"
CEILING, OURS = "ceiling", "ours"
INTAKE_RATIO_TARGET = 0.40
INTAKE_P99_TARGET_MS = 50.0
E2E_TARGET_RATE = 200.0
DASHBOARD_TARGET_ORDERS = 1_000_000
RSS_TARGET_MB = 250

INTERFERENCE_PCT = 10.0  # "other" CPU, in % of a core, worth a warning
TIME_BUDGET_S = 590.0  # the whole run, setup included
LOCK_MS = int((TIME_BUDGET_S + 60) * 1000)  # the queue's reservation outlives any run
BACKLOG_SEED_S = 40.0  # storing the 100,000-order backlog (COPY) and starting the workers
MODULE_SETUP_S = 20.0  # a bench module's database, API and workers
OVERHEAD_S = 90.0  # setup, start-ups, warm-ups, shutdowns: reserved out of the budget
INTAKE_RUN_OVERHEAD_S = 10.0  # a server's start, warm-up and stop
# The dashboard's seed took 420 s for 1,000,000 orders on 2 busy cores: too long for one run
# under 10 minutes, so `python -m bench` seeds fewer by default (see --dashboard-orders).
DASHBOARD_S_PER_ORDER = 4.2e-4

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

LABEL_API = "api"
LABEL_WORKER = "worker"
LABEL_POSTGRES = "postgres"
LABEL_REDIS = "redis"
LABEL_PGBOUNCER = "pgbouncer"
LABEL_LOADGEN = "load generator"
LABEL_DRIVER = "bench driver"
LABEL_KERNEL = "kernel threads"
LABEL_OTHER = OTHER


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Config:
    api_workers: int = 1  # of the end-to-end run
    intake_processes: tuple[int, ...] = (1, 2)  # ceiling and service, each with N processes
    only: tuple[str, ...] = ()  # names in BENCHMARKS; empty: all
    loadgen: str = "auto"  # auto | wrk | python
    wrk_threads: int = 2
    loadgen_processes: int = 2
    connections: int = 64
    intake_seconds: int = 10
    pool_size: int = 30_000  # distinct orders: a run of ours at 3,000 req/s repeats none
    drain_seconds: float = 10.0
    e2e_rate: float = 100.0
    e2e_seconds: float = 20.0
    settle_seconds: float = 45.0
    customers: int = 1000
    postgres: str = "postgresql://postgres@127.0.0.1:5432"
    database: str = "cashback_bench"
    redis: str = "redis://127.0.0.1:6379/11"
    queue: str = "cashback:bench"
    port: int = 0
    db_pool_size: int | None = None
    worker_max_jobs: int | None = None
    calc_iterations: int = 2000
    dashboard_orders: int = 200_000  # the target is at 1,000,000: --dashboard-orders 1000000
    dashboard_calls: int = 100
    keep_files: bool = False
    service_log_level: str = "WARNING"
    pgbouncer: bool = False  # the API and worker through a PgBouncer (bench/pooler.py)
    out: Path = BENCH_DIR / "results.json"

    def validate(self) -> None:
        if not _DB_NAME.match(self.database):
            raise BenchError(f"not a plain database name: {self.database!r}")
        if self.api_workers < 1 or self.connections < 1 or self.customers < 1:
            raise BenchError("api workers, connections and customers must be at least 1")
        if self.intake_seconds < 1 or self.e2e_seconds <= 0 or self.e2e_rate <= 0:
            raise BenchError("durations and the rate must be positive")
        if self.pool_size < self.connections:
            raise BenchError("the pool must hold at least one body per connection")
        timed = self.estimated_seconds()
        if timed + OVERHEAD_S > TIME_BUDGET_S:
            raise BenchError(
                f"the benchmarks would take about {timed:.0f} s; with {OVERHEAD_S:.0f} s of "
                f"set-up the run would pass its {TIME_BUDGET_S:.0f} s budget"
            )

    def estimated_seconds(self) -> float:
        def on(name: str) -> bool:
            return not self.only or name in self.only

        runs = 2 * len(self.intake_processes)
        return (
            on("intake") * runs * (self.intake_seconds + INTAKE_RUN_OVERHEAD_S)
            + on("drain") * self.drain_seconds
            + on("e2e") * (self.e2e_seconds + self.settle_seconds)
            + on("backlog") * (BACKLOG_SEED_S + 2 * BACKLOG_LIMIT_S)
            + on("sustained") * (SUSTAINED_S + len(RAMP) * RAMP_STEP_S + 2 * MODULE_SETUP_S)
            + on("dashboard") * self.dashboard_orders * DASHBOARD_S_PER_ORDER
        )

    def database_url(self, database: str | None = None) -> str:
        url = make_url(self.postgres).set(
            drivername="postgresql+asyncpg", database=database or self.database
        )
        return url.render_as_string(hide_password=False)


@dataclass(frozen=True, slots=True)
class Shop:
    id: int
    domain: str
    secret: str


@dataclass
class LoadResult:
    tool: str
    completed: int
    sent: int
    non2xx: int
    socket_errors: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float  # the load generator's own CPU
    pool_size: int

    @property
    def rate(self) -> float:
        return self.completed / self.duration_s if self.duration_s else 0.0


@dataclass
class Sent:
    statuses: Counter[int] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)  # orders whose webhook got 200
    max_lag_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)


def error_summary(stderr: str, lines: int = 6) -> str:
    """The last lines of a traceback, without rich's boxes."""
    kept = [
        line.rstrip()
        for line in stderr.splitlines()
        if line.strip() and not line.lstrip().startswith(("│", "╭", "╰"))
    ]
    return "\n".join(kept[-lines:])


def backend_database(pid: int) -> str | None:
    """The database of a PostgreSQL backend, from its title ("postgres: 15/main: user db
    host(port) state"); None for the server's own processes (checkpointer, walwriter, …)."""
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return None
    words = title.split(": ", 2)[-1].split()
    is_backend = len(words) >= 3 and (words[2].endswith(")") or words[2] == "[local]")
    return words[1] if is_backend else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        for label in [*labels, LABEL_KERNEL, LABEL_OTHER]
    ]
    cores = os.cpu_count() or 1
    figures.append(
        Figure(
            section,
            "CPU not attributed",
            report.unattributed_pct_of_core(cores),
            "% of 1 core (processes that came and went)",
        )
    )
    split = report.machine_split_pct
    in_irq = split.get("irq", 0.0) + split.get("softirq", 0.0)
    figures.append(
        Figure(
            section,
            "machine CPU busy",
            report.machine_busy_pct,
            f"% of {cores} cores (interrupts {in_irq:.0f}%, steal {split.get('steal', 0.0):.0f}%)",
        )
    )
    return figures


class Bench:
    def __init__(self, cfg: Config, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.procs = Processes()
        self.port = cfg.port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = self._service_env()
        self.api: Process | None = None
        self.worker: Process | None = None
        self.loadgen_pgids: set[int] = set()
        self.figures: list[Figure] = []
        self.details: dict[str, Any] = {
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        }
        self.intake_shop: Shop | None = None
        self.e2e_shop: Shop | None = None
        self.postmaster_pid = -1
        self.summary: list[Figure] = []  # the figures the issue sets targets for
        self.api_peak_rss_mb = 0.0
        self.ceiling_rates: dict[int, float] = {}  # intake throughput of the ceiling app
        self.worker_peak_rss_mb = 0.0
        self.lock: str | None = None  # the Redis key that reserves the queue for this run
        self.bouncer: pooler.PgBouncer | None = None

    # -- set-up (synchronous: alembic runs its own event loop) ------------------------------

    def _service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CASHBACK_DATABASE_URL=self.cfg.database_url(),
            CASHBACK_REDIS_URL=self.cfg.redis,
            CASHBACK_QUEUE_NAME=self.cfg.queue,
            CASHBACK_LOG_LEVEL=self.cfg.service_log_level,
        )
        if self.cfg.db_pool_size is not None:
            env["CASHBACK_DB_POOL_SIZE"] = str(self.cfg.db_pool_size)
        if self.cfg.worker_max_jobs is not None:
            env["CASHBACK_WORKER_MAX_JOBS"] = str(self.cfg.worker_max_jobs)
        return env

    def setup(self) -> None:
        began = time.perf_counter()
        asyncio.run(self._reserve_queue())  # first: a concurrent run must not lose its database
        asyncio.run(self._recreate_database())
        migrate.upgrade(self.cfg.database_url())
        if self.cfg.pgbouncer:
            self.bouncer = pooler.PgBouncer.start(
                self.cfg.database_url(), self.workdir / "pgbouncer"
            )
            self.env.update(self.bouncer.service_env(self.cfg.database))
            self.details["pooler"] = "pgbouncer, transaction pooling"
        self.intake_shop = self._create_shop("bench-intake.myshopify.com")
        self.e2e_shop = self._create_shop("bench-e2e.myshopify.com")
        self.details["setup_s"] = round(time.perf_counter() - began, 2)

    async def _recreate_database(self) -> None:
        admin = create_async_engine(self.cfg.database_url("postgres"), isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as conn:
                name = self.cfg.database  # validated: a plain identifier
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
                version = (await conn.execute(text("SHOW server_version"))).scalar_one()
                self.details["machine"]["postgres"] = str(version)
                backend = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                # Our server's processes are its postmaster and the postmaster's children; any
                # other `postgres` (a test suite's embedded server) is not ours.
                self.postmaster_pid = processes_by_pid().get(int(backend), NO_PROC).ppid
        except OSError as exc:
            raise BenchError(f"PostgreSQL at {self.cfg.postgres} is not reachable: {exc}") from exc
        finally:
            await admin.dispose()

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
        self.db = create_async_engine(self.cfg.database_url(), pool_size=2, max_overflow=2)
        self.redis = Redis.from_url(self.cfg.redis)
        try:
            for name, benchmark in BENCHMARKS:
                if not self.cfg.only or name in self.cfg.only:
                    began = time.perf_counter()
                    print(f"bench: {name} …", file=sys.stderr, flush=True)
                    await benchmark(self)
                    self.details.setdefault("seconds", {})[name] = round(
                        time.perf_counter() - began, 1
                    )
            self.summarise_memory()
        finally:
            self.procs.stop_all()
            await self.redis.aclose()
            await self.db.dispose()

    async def _reserve_queue(self) -> None:
        """Take the queue for this run (a lock that outlives the longest run, in case this one
        is killed), then clear what an earlier run may have left in it."""
        lock = self.cfg.queue + ":bench-lock"
        redis = Redis.from_url(self.cfg.redis)
        try:
            if not await redis.set(lock, os.getpid(), nx=True, px=LOCK_MS):
                left = int(await redis.pttl(lock)) / 1000
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
        if self.bouncer is not None:
            self.bouncer.stop()
            self.bouncer = None
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

    def summarise_memory(self) -> None:
        """Peak RSS of the API (intake and end-to-end) and of the worker, against 250 MB."""
        for name, peak in (("API", self.api_peak_rss_mb), ("worker", self.worker_peak_rss_mb)):
            if peak > 0:
                self.summary.append(
                    Figure(
                        SUMMARY,
                        f"{name} peak RSS under load (VmHWM, largest process)",
                        peak,
                        "MB",
                        target=f"<= {RSS_TARGET_MB} MB",
                        passed=peak <= RSS_TARGET_MB,
                    )
                )

    @property
    def database_labels(self) -> list[str]:
        return [LABEL_POSTGRES, LABEL_PGBOUNCER] if self.bouncer else [LABEL_POSTGRES]

    def label(self, proc: Proc) -> str:
        if self.api is not None and proc.pgrp == self.api.pgid:
            return LABEL_API
        if self.worker is not None and proc.pgrp == self.worker.pgid:
            return LABEL_WORKER
        if proc.pgrp in self.loadgen_pgids:
            return LABEL_LOADGEN
        if proc.pid == os.getpid():
            return LABEL_DRIVER
        if self.bouncer is not None and proc.pid == self.bouncer.process.pid:
            return LABEL_PGBOUNCER
        if proc.kernel_thread:
            return LABEL_KERNEL  # kworkers: I/O write-back, network soft interrupts, …
        if self.postmaster_pid in (proc.pid, proc.ppid):
            database = backend_database(proc.pid)
            return LABEL_POSTGRES if database in (None, self.cfg.database) else LABEL_OTHER
        if self.postmaster_pid < 0 and proc.comm.startswith("postgres"):
            return LABEL_POSTGRES
        if proc.comm.startswith("redis"):
            return LABEL_REDIS
        return LABEL_OTHER

    async def start_api(self, port: int, workers: int) -> Process:
        argv = [*cashback_command(), "api", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(workers)]
        self.api = self.procs.start("api", argv, self.env, self.workdir / f"api-{port}.log", REPO)
        await self.wait_ready(self.api, port, workers)
        return self.api

    async def start_ceiling(self, port: int, workers: int, secret: str) -> Process:
        argv = [sys.executable, "-m", "uvicorn", "bench.ceiling:app", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(workers), "--no-access-log"]
        argv += ["--log-level", "warning", "--timeout-worker-healthcheck", "60"]
        env = dict(os.environ, BENCH_CEILING_SECRET=secret)
        # Labelled as the API: it stands in for it, and is never up at the same time.
        log = self.workdir / f"ceiling-{port}.log"
        self.api = self.procs.start("ceiling", argv, env, log, REPO)
        await self.wait_ready(self.api, port, workers)
        return self.api

    async def wait_ready(self, server: Process, port: int, workers: int) -> None:
        deadline = time.perf_counter() + 90
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=2) as client:
            while True:
                if not server.running:
                    raise BenchError(f"{server.name} exited at start:\n{server.log_tail()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.perf_counter() > deadline:
                    raise BenchError(f"{server.name} is not ready after 90 s:\n{server.log_tail()}")
                await asyncio.sleep(0.2)
        if workers > 1:
            await asyncio.sleep(5.0)  # /readyz answered by one process; let the others boot

    def start_worker(self) -> None:
        argv = [*cashback_command(), "worker"]
        self.worker = self.procs.start("worker", argv, self.env, self.workdir / "worker.log", REPO)

    def stop_worker(self) -> None:
        if self.worker is not None:
            peaks = peak_rss_mb(self.worker.pgid)
            self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, *peaks.values(), 0.0)
            self.worker.stop(timeout=15)
            self.worker = None

    def client(self) -> rawhttp.Client:
        return rawhttp.Client("127.0.0.1", self.port, self.cfg.connections)

    def note_interference(self, phase: str, cpu: CpuReport) -> None:
        """Remember when processes outside the run took a noticeable share of the CPU."""
        lost = cpu.unattributed_pct_of_core(os.cpu_count() or 1)
        share = cpu.pct_of_core(LABEL_OTHER) + lost
        if share >= INTERFERENCE_PCT:
            programs = ", ".join(
                f"{name} {sec:.1f} s" for name, sec in cpu.other_by_program_s.items()
            )
            self.details.setdefault("interference", []).append(
                f"{phase}: processes outside the benchmark used {share:.0f}% of a core "
                f"({programs or 'short-lived ones'}; {lost:.0f}% not attributed to any process "
                "still running at the end); its figures are disturbed"
            )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()

    # -- phase 1: intake ------------------------------------------------------------------------

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
            ceiling = await self.intake_run(CEILING, processes, pool, shop, warm)
            ours = await self.intake_run(OURS, processes, pool, shop, warm)
            ratio = ours.rate / ceiling.rate if ceiling.rate else float("nan")
            self.summary += [
                Figure(
                    SUMMARY,
                    f"intake throughput, {processes} process(es)",
                    ours.rate,
                    "req/s",
                    target=f">= {INTAKE_RATIO_TARGET:.2f} of ceiling",
                    ratio=ratio,
                    passed=ratio >= INTAKE_RATIO_TARGET,
                ),
                Figure(
                    SUMMARY,
                    f"intake latency p99, {processes} process(es)",
                    ours.p99_ms,
                    "ms",
                    target=f"<= {INTAKE_P99_TARGET_MS:.0f} ms",
                    passed=ours.p99_ms <= INTAKE_P99_TARGET_MS,
                ),
            ]

    async def intake_run(
        self, target: str, processes: int, pool: Path, shop: Shop, warm: list[Delivery]
    ) -> LoadResult:
        """One server (`cashback api` or the ceiling app) under the intake load, then stopped."""
        cfg = self.cfg
        run = f"{target}{processes}"
        port = free_port()
        if target == OURS:
            server = await self.start_api(port, processes)
        else:
            server = await self.start_ceiling(port, processes, shop.secret)
        try:
            # Warm the server (and its connection pools) outside the measurement.
            client = rawhttp.Client("127.0.0.1", port, cfg.connections)
            try:
                await self.send_at_rate(client, shop, warm, 1000.0, f"warm-{run}", port)
            finally:
                await client.close()
            count_events = "SELECT count(*) FROM webhook_events WHERE shop_id = :shop"
            events_before = int(await self.scalar(count_events, shop=shop.id))
            tool = cfg.loadgen
            wrk = shutil.which("wrk")
            if tool == "auto":
                tool = "wrk" if wrk else "python"
            if tool == "wrk" and wrk is None:
                raise BenchError("--loadgen wrk: `wrk` is not on PATH (apt-get install wrk)")
            meter = CpuMeter(self.label)
            meter.start()
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            if tool == "wrk" and wrk is not None:
                result = await self.run_wrk(wrk, pool, shop, port, run)
            else:
                result = await self.run_python_loadgen(pool, shop, port, run)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            exited = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
            cpu = meter.stop({LABEL_LOADGEN: exited})
            rss = peak_rss_mb(server.pgid)
        finally:
            server.stop(timeout=15)
            self.api = None
        self.note_interference(f"intake {run}", cpu)
        stored = int(await self.scalar(count_events, shop=shop.id)) - events_before
        self.details.setdefault("intake", {})[run] = {
            **asdict(result),
            "events_stored": stored,
            "peak_rss_mb": rss,
            "cpu": asdict(cpu),
        }
        ceiling = self.ceiling_rates.get(processes)
        if target == CEILING:
            self.ceiling_rates[processes] = result.rate
        ratio = result.rate / ceiling if target == OURS and ceiling else None
        label = "the service (`cashback api`)" if target == OURS else "no-I/O ceiling app"
        s = f"intake: {label}, {processes} process(es)"
        loadgen_pct = 100.0 * result.cpu_s / result.duration_s
        per_request = 1000 * cpu.by_label_s.get(LABEL_API, 0.0) / max(result.completed, 1)
        # The uvicorn supervisor of several workers is small: the largest process counts.
        peak = max(rss.values(), default=float("nan"))
        self.figures += [
            Figure(s, "load generator", result.tool.split()[0], result.tool),
            Figure(s, "connections", cfg.connections),
            Figure(s, "duration", result.duration_s, "s"),
            Figure(s, "throughput", result.rate, "req/s", ratio=ratio),
            Figure(s, "latency p50", result.p50_ms, "ms"),
            Figure(s, "latency p99", result.p99_ms, "ms"),
            Figure(s, "non-2xx responses", result.non2xx),
            Figure(s, "socket errors / timeouts", result.socket_errors),
            Figure(s, "CPU load generator", loadgen_pct, "% of 1 core"),
            Figure(s, "server CPU per request", per_request, "ms"),
            Figure(s, "server peak RSS (largest process)", peak, "MB"),
        ]
        if target == OURS:
            self.figures.append(Figure(s, "events stored in PostgreSQL", stored))
            self.api_peak_rss_mb = max(self.api_peak_rss_mb, peak)
        self.figures += cpu_figures(
            s, cpu, [LABEL_API, LABEL_LOADGEN, *self.database_labels, LABEL_REDIS]
        )
        if result.non2xx or result.socket_errors or (target == OURS and stored < result.completed):
            self.details.setdefault("problems", []).append(
                f"intake {run}: {result.non2xx} non-2xx, {result.socket_errors} socket errors, "
                f"{stored} events stored for {result.completed} requests"
            )
        return result

    async def wait_exit(self, proc: Process, limit_s: float) -> int:
        deadline = time.perf_counter() + limit_s
        while proc.running:
            if time.perf_counter() > deadline:
                proc.stop()
                raise BenchError(f"{proc.name} did not finish in {limit_s:.0f} s")
            await asyncio.sleep(0.1)
        code: int = proc.popen.returncode
        return code

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
        self.loadgen_pgids.add(proc.pgid)
        code = await self.wait_exit(proc, cfg.intake_seconds + 60)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if code != 0 or not out.exists():
            raise BenchError(f"wrk failed (exit {code}):\n{proc.log_tail()}")
        data = json.loads(out.read_text())
        cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
        errors = sum(int(data[k]) for k in ("connect_errors", "read_errors", "write_errors"))
        return LoadResult(
            tool=f"{wrk_version(wrk)} ({threads} threads, Lua)",
            completed=int(data["completed"]),
            sent=int(data["sent"]),
            non2xx=int(data["non2xx"]),
            socket_errors=errors + int(data["timeouts"]),
            duration_s=float(data["duration_us"]) / 1e6,
            p50_ms=float(data["p50_us"]) / 1000,
            p90_ms=float(data["p90_us"]) / 1000,
            p99_ms=float(data["p99_us"]) / 1000,
            max_ms=float(data["max_us"]) / 1000,
            cpu_s=cpu,
            pool_size=int(data["pool_size"]),
        )

    async def run_python_loadgen(self, pool: Path, shop: Shop, port: int, run: str) -> LoadResult:
        cfg = self.cfg
        count = max(min(cfg.loadgen_processes, cfg.connections), 1)
        start_at = time.time() + 2.5  # every process loads its pool before this
        procs: list[tuple[Process, Path]] = []
        for n in range(count):
            conns = cfg.connections // count + (1 if n < cfg.connections % count else 0)
            out = self.workdir / f"loadgen-{run}-{n}.json"
            argv = [sys.executable, "-m", "bench.loadgen", "--host", "127.0.0.1"]
            argv += ["--port", str(port), "--domain", shop.domain, "--pool", str(pool)]
            argv += ["--out", str(out), "--connections", str(conns)]
            argv += ["--duration", str(cfg.intake_seconds), "--start-at", f"{start_at:.3f}"]
            argv += ["--label", f"{run}-py{n}", "--offset", str(n * cfg.pool_size // count)]
            proc = self.procs.start(
                f"loadgen-{n}", argv, dict(os.environ), out.with_suffix(".log"), REPO
            )
            self.loadgen_pgids.add(proc.pgid)
            procs.append((proc, out))
        latencies: list[float] = []
        completed = sent = non2xx = errors = 0
        rate = cpu = wall = 0.0
        for proc, out in procs:
            code = await self.wait_exit(proc, cfg.intake_seconds + 60)
            if code != 0 or not out.exists():
                raise BenchError(f"{proc.name} failed (exit {code}):\n{proc.log_tail()}")
            data = json.loads(out.read_text())
            latencies += data["latencies_s"]
            completed += int(data["completed"])
            sent += int(data["sent"])
            non2xx += int(data["non2xx"])
            errors += int(data["errors"])
            rate += int(data["completed"]) / float(data["wall_s"])
            cpu += float(data["cpu_s"])
            wall = max(wall, float(data["wall_s"]))
        return LoadResult(
            tool=f"python asyncio ({count} processes, raw sockets)",
            completed=completed,
            sent=sent,
            non2xx=non2xx,
            socket_errors=errors,
            duration_s=completed / rate if rate else wall,
            p50_ms=percentile(latencies, 50) * 1000,
            p90_ms=percentile(latencies, 90) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            max_ms=max(latencies, default=0.0) * 1000,
            cpu_s=cpu,
            pool_size=cfg.pool_size,
        )

    # -- phase 2: the worker on the intake backlog ----------------------------------------------

    async def drain(self) -> None:
        """Start the worker on the intake backlog for a while: its saturated throughput."""
        cfg, shop = self.cfg, self.intake_shop
        assert shop is not None
        if cfg.drain_seconds <= 0:
            return
        backlog = int(
            await self.scalar(
                "SELECT count(*) FROM webhook_events WHERE shop_id = :shop AND status = 'received'",
                shop=shop.id,
            )
        )
        count_credited = (
            "SELECT count(*) FROM orders WHERE shop_id = :shop AND status = 'processed'"
        )
        self.start_worker()
        # Measure from the first credit on: the worker's start-up (imports) is not its pace.
        deadline = time.perf_counter() + 60
        while not int(await self.scalar(count_credited, shop=shop.id)):
            self.check_worker_alive()
            if error := await self.job_error(shop):
                raise BenchError(f"the worker fails the jobs: {error}")
            if time.perf_counter() > deadline:
                raise BenchError("the worker credited nothing in 60 s")
            await asyncio.sleep(0.05)
        meter = CpuMeter(self.label)
        meter.start()
        first = int(await self.scalar(count_credited, shop=shop.id))
        began = time.perf_counter()
        deadline = began + cfg.drain_seconds
        while time.perf_counter() < deadline:
            self.check_worker_alive()
            await asyncio.sleep(0.2)
        last = int(await self.scalar(count_credited, shop=shop.id))
        elapsed = time.perf_counter() - began
        cpu = meter.stop()  # before the worker stops, or its CPU is lost with it
        self.note_interference("drain", cpu)
        self.stop_worker()
        processed = last - first
        rate = processed / elapsed if elapsed > 0 else float("nan")
        per_order = (
            1000 * cpu.by_label_s.get(LABEL_WORKER, 0.0) / processed if processed else float("nan")
        )
        self.details["drain"] = {
            "backlog": backlog,
            "processed_in_window": processed,
            "window_s": elapsed,
            "cpu": asdict(cpu),
        }
        s = "worker on the intake backlog"
        self.figures += [
            Figure(s, "backlog at start", backlog, "events"),
            Figure(s, "measured window (from the first credit)", elapsed, "s"),
            Figure(s, "orders credited in the window", processed),
            Figure(
                s,
                "worker throughput (saturated)",
                rate,
                "orders/s" if last < backlog else "orders/s (the backlog ran out: a lower bound)",
            ),
            Figure(s, "worker CPU per order", per_order, "ms"),
            *cpu_figures(s, cpu, [LABEL_WORKER, *self.database_labels, LABEL_REDIS, LABEL_API]),
        ]

    async def discard_backlog(self) -> None:
        """Drop what is left of the intake backlog, so the end-to-end phase starts on an empty
        queue (and the sweeper finds nothing stale): events become `ignored`, jobs go."""
        shop = self.intake_shop
        assert shop is not None and self.worker is None
        async with self.db.begin() as conn:
            ids = list(
                (
                    await conn.execute(
                        text(
                            "UPDATE webhook_events SET status = 'ignored', handled_at = now(), "
                            "error = 'discarded by the benchmark' "
                            "WHERE shop_id = :shop AND status = 'received' RETURNING id"
                        ),
                        {"shop": shop.id},
                    )
                ).scalars()
            )
        # What is left in the queue (jobs killed mid-flight included: arq removes a job from
        # its queue only when it finishes) goes, with each job's keys.
        queued = [m.decode() for m in await self.redis.zrange(self.cfg.queue, 0, -1)]
        keys = [self.cfg.queue]
        for job_id in queued:
            keys += [f"arq:{kind}:{job_id}" for kind in ("job", "in-progress", "retry")]
        for at in range(0, len(keys), 3000):
            await self.redis.delete(*keys[at : at + 3000])
        self.details["discarded_jobs"] = len(queued)
        self.details["discarded_events"] = len(ids)

    # -- phase 3: paid → credit at a fixed rate -------------------------------------------------

    async def send_at_rate(
        self,
        client: rawhttp.Client,
        shop: Shop,
        deliveries: list[Delivery],
        rate: float,
        label: str,
        port: int | None = None,
    ) -> Sent:
        """Open loop: delivery i is due at start + i/rate whatever the answers before it; its
        response time counts from then (time waiting for a free connection included)."""
        sent = Sent()
        host = f"127.0.0.1:{port or self.port}"
        raws = [
            rawhttp.post_request(host, WEBHOOK_PATH, d.headers(shop.domain, f"{label}-{n}"), d.body)
            for n, d in enumerate(deliveries)
        ]

        async def post(raw: bytes, due: float, order_id: int) -> None:
            try:
                status, body = await client.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                sent.statuses[0] += 1
                sent.results[type(exc).__name__] += 1
                return
            sent.latencies_s.append(time.perf_counter() - due)
            sent.statuses[status] += 1
            if status == 200:
                result = str(json.loads(body).get("result"))
                sent.results[result] += 1
                if result == "accepted":
                    sent.accepted_ids.append(str(order_id))

        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.05
        for n, (raw, delivery) in enumerate(zip(raws, deliveries, strict=True)):
            due = start + n / rate
            lag = time.perf_counter() - due
            if lag < 0:
                await asyncio.sleep(-lag)
            else:
                sent.max_lag_s = max(sent.max_lag_s, lag)
            tasks.append(asyncio.create_task(post(raw, due, delivery.order_id)))
        await asyncio.gather(*tasks)
        sent.wall_s = time.perf_counter() - start
        return sent

    async def processed_count(self, shop: Shop, ids: list[str]) -> int:
        return int(
            await self.scalar(
                "SELECT count(*) FROM orders WHERE shop_id = :shop "
                "AND external_id = ANY(:ids) AND status = 'processed'",
                shop=shop.id,
                ids=ids,
            )
        )

    def check_worker_alive(self) -> None:
        if self.worker is not None and not self.worker.running:
            raise BenchError(f"the worker exited:\n{self.worker.log_tail()}")

    async def job_error(self, shop: Shop) -> str | None:
        """The error of a failed try of one of the shop's events, if any."""
        error: str | None = await self.scalar(
            "SELECT max(error) FROM webhook_events WHERE shop_id = :shop AND error IS NOT NULL",
            shop=shop.id,
        )
        return error

    async def wait_processed(
        self, shop: Shop, ids: list[str], limit_s: float, *, fail_fast: bool = False
    ) -> int:
        deadline = time.perf_counter() + limit_s
        while True:
            done = await self.processed_count(shop, ids)
            if done >= len(ids) or time.perf_counter() > deadline:
                return done
            if fail_fast and (error := await self.job_error(shop)):
                raise BenchError(f"the worker fails the jobs: {error}")
            self.check_worker_alive()
            await asyncio.sleep(0.2)

    async def end_to_end(self) -> None:
        cfg, shop = self.cfg, self.e2e_shop
        assert shop is not None
        factory = OrderFactory(shop.secret, cfg.customers)
        count = round(cfg.e2e_rate * cfg.e2e_seconds)
        deliveries = [factory.delivery(E2E_ORDER_BASE + i) for i in range(count)]
        ids = [str(d.order_id) for d in deliveries]
        self.start_worker()
        client = self.client()
        try:
            warm = [factory.delivery(WARMUP_ORDER_BASE + i) for i in range(WARMUP_ORDERS)]
            await self.send_at_rate(client, shop, warm, WARMUP_RATE, "warm-e2e")
            warm_ids = [str(d.order_id) for d in warm]
            if await self.wait_processed(shop, warm_ids, 60, fail_fast=True) < len(warm):
                assert self.worker is not None
                raise BenchError(
                    "the warm-up orders were not credited within 60 s; worker log:\n"
                    + self.worker.log_tail()
                )
            meter = CpuMeter(self.label)
            meter.start()
            sent = await self.send_at_rate(client, shop, deliveries, cfg.e2e_rate, "e2e")
            sending_done = time.perf_counter()
            processed = await self.wait_processed(shop, sent.accepted_ids, cfg.settle_seconds)
            settle = time.perf_counter() - sending_done
            cpu = meter.stop()
        finally:
            await client.close()
        self.note_interference("end-to-end", cpu)
        await self.report_end_to_end(shop, ids, sent, processed, settle, cpu)

    async def report_end_to_end(
        self,
        shop: Shop,
        ids: list[str],
        sent: Sent,
        processed: int,
        settle: float,
        cpu: CpuReport,
    ) -> None:
        cfg = self.cfg
        params = {"shop": shop.id, "ids": ids}
        async with self.db.connect() as conn:
            latencies = [
                float(v)
                for v in (
                    await conn.execute(
                        text(
                            "SELECT EXTRACT(EPOCH FROM processed_at - paid_received_at)::float8 "
                            "FROM orders WHERE shop_id = :shop AND external_id = ANY(:ids) "
                            "AND status = 'processed'"
                        ),
                        params,
                    )
                ).scalars()
            ]
            statuses = {
                str(status): int(n)
                for status, n in (
                    await conn.execute(
                        text(
                            "SELECT status, count(*) FROM orders WHERE shop_id = :shop "
                            "AND external_id = ANY(:ids) GROUP BY status"
                        ),
                        params,
                    )
                ).all()
            }
            entries, credited = (
                await conn.execute(
                    text(
                        "SELECT count(l.id), coalesce(sum(l.amount), 0)::bigint "
                        "FROM ledger_entries l JOIN orders o ON o.id = l.order_id "
                        "WHERE o.shop_id = :shop AND o.external_id = ANY(:ids)"
                    ),
                    params,
                )
            ).one()
            expected_credit = await conn.execute(
                text(
                    "SELECT coalesce(sum(cashback_amount), 0)::bigint FROM orders "
                    "WHERE shop_id = :shop AND external_id = ANY(:ids) AND status = 'processed'"
                ),
                params,
            )
            owed = int(expected_credit.scalar_one())
            span = (
                await conn.execute(
                    text(
                        "SELECT EXTRACT(EPOCH FROM max(processed_at) - min(paid_received_at))"
                        "::float8 FROM orders WHERE shop_id = :shop AND external_id = ANY(:ids) "
                        "AND status = 'processed'"
                    ),
                    params,
                )
            ).scalar_one()
        credit_rate = processed / float(span) if span else float("nan")
        kept_up = credit_rate >= 0.95 * cfg.e2e_rate
        expected = len(ids)
        missing = expected - sum(statuses.values())
        if processed < expected or int(entries) != processed or int(credited) != owed:
            self.details["e2e_problem"] = (
                f"{processed}/{expected} processed, {entries} ledger entries, "
                f"credited {credited} vs owed {owed} (minor units), statuses {statuses}, "
                f"{missing} orders not created yet (their events still waiting for the worker)"
            )
        self.details["e2e"] = {
            "expected": expected,
            "http_statuses": {str(k): v for k, v in sent.statuses.items()},
            "results": dict(sent.results),
            "order_statuses": statuses,
            "orders_missing": missing,
            "ledger_entries": int(entries),
            "credited_minor_units": int(credited),
            "owed_minor_units": owed,
            "settle_s": settle,
            "credit_rate_per_s": credit_rate,
            "kept_up": kept_up,
            "response_time_ms": {
                str(p): percentile(sent.latencies_s, p) * 1000 for p in (50, 90, 99, 100)
            },
            "paid_to_credit_ms": {
                str(p): percentile(latencies, p) * 1000 for p in (50, 90, 95, 99, 100)
            },
            "cpu": asdict(cpu),
        }
        p95, p99 = percentile(latencies, 95) * 1000, percentile(latencies, 99) * 1000
        at_rate = cfg.e2e_rate >= E2E_TARGET_RATE
        complete = processed == expected
        self.summary += [
            Figure(
                SUMMARY,
                f"paid -> credit p95 at {cfg.e2e_rate:g} orders/s",
                p95,
                "ms",
                target=f"<= 250 ms at {E2E_TARGET_RATE:.0f}/s",
                passed=complete and p95 <= 250 if at_rate else None,  # below its rate: no verdict
            ),
            Figure(
                SUMMARY,
                f"paid -> credit p99 at {cfg.e2e_rate:g} orders/s",
                p99,
                "ms",
                target=f"<= 1000 ms at {E2E_TARGET_RATE:.0f}/s",
                passed=complete and p99 <= 1000 if at_rate else None,
            ),
        ]
        s = "end-to-end (worker running)"
        non2xx = sum(n for status, n in sent.statuses.items() if not 200 <= status < 300)
        self.figures += [
            Figure(s, "target rate", cfg.e2e_rate, "webhooks/s"),
            Figure(s, "webhooks sent", expected),
            Figure(s, "sender max lag behind schedule", sent.max_lag_s * 1000, "ms"),
            Figure(s, "webhook response time p50", percentile(sent.latencies_s, 50) * 1000, "ms"),
            Figure(s, "webhook response time p99", percentile(sent.latencies_s, 99) * 1000, "ms"),
            Figure(s, "non-2xx responses", non2xx),
            Figure(s, "orders processed", f"{processed} / {expected}", "orders"),
            Figure(s, "ledger credits written", int(entries)),
            Figure(s, "credited in the ledger", int(credited), "minor units (USD cents)"),
            Figure(s, "cashback owed by those orders", owed, "minor units (USD cents)"),
            Figure(s, "paid -> credit p50", percentile(latencies, 50) * 1000, "ms"),
            Figure(s, "paid -> credit p95", percentile(latencies, 95) * 1000, "ms"),
            Figure(s, "paid -> credit p99", percentile(latencies, 99) * 1000, "ms"),
            Figure(s, "paid -> credit max", max(latencies, default=float("nan")) * 1000, "ms"),
            Figure(s, "last send -> all credited", settle, "s"),
            Figure(s, "credit throughput (first paid -> last credit)", credit_rate, "orders/s"),
            Figure(s, "pipeline kept up with the rate", "yes" if kept_up else "NO", ""),
            *cpu_figures(
                s, cpu, [LABEL_API, LABEL_WORKER, *self.database_labels, LABEL_REDIS, LABEL_DRIVER]
            ),
        ]


# -- the list of benchmarks ---------------------------------------------------------------------


async def run_drain(bench: Bench) -> None:
    """The worker on what the intake runs stored, then the rest of that backlog discarded."""
    await bench.drain()
    await bench.discard_backlog()


async def run_end_to_end(bench: Bench) -> None:
    api = await bench.start_api(bench.port, bench.cfg.api_workers)
    try:
        await bench.end_to_end()
    finally:
        bench.api_peak_rss_mb = max(bench.api_peak_rss_mb, *peak_rss_mb(api.pgid).values(), 0.0)
        bench.stop_worker()
        api.stop(timeout=15)
        bench.api = None


async def run_calculation(bench: Bench) -> None:
    """A 100-line order against a 50-rule program, in this process (no I/O)."""
    figures = await asyncio.to_thread(program_bench.bench_calculation, bench.cfg.calc_iterations)
    bench.details["calculation"] = figures
    s = "calculation (100-line order, 50 rules)"
    mean = figures["calc_100_lines_50_rules_mean_ms"]
    p99 = figures["calc_100_lines_50_rules_p99_ms"]
    bench.figures += [
        Figure(s, "iterations", bench.cfg.calc_iterations),
        Figure(s, "mean", mean, "ms"),
        Figure(s, "median", figures["calc_100_lines_50_rules_median_ms"], "ms"),
        Figure(s, "p99", p99, "ms"),
        Figure(s, "program compile (once per version)", figures["program_compile_ms"], "ms"),
    ]
    name = "calculation, 100 lines x 50 rules (mean)"
    bench.summary.append(Figure(SUMMARY, name, mean, "ms", "< 1 ms", passed=mean < 1))


async def run_dashboard(bench: Bench) -> None:
    """The dashboard of a shop with `dashboard_orders` orders, in a database of its own."""
    cfg = bench.cfg
    figures = await dashboard_bench.run(
        cfg.database_url("postgres"), cfg.dashboard_orders, cfg.dashboard_calls
    )
    bench.details["dashboard"] = figures
    s = f"dashboard ({cfg.dashboard_orders:,} orders)"
    p95 = figures["dashboard_p95_ms"]
    bench.figures += [
        Figure(s, "seed (orders, ledger, rollups, VACUUM ANALYZE)", figures["seed_seconds"], "s"),
        Figure(s, "orders of the shop", int(figures["orders_big_shop"])),
        Figure(s, "ledger entries of the shop", int(figures["ledger_entries_big_shop"])),
        Figure(s, "calls", cfg.dashboard_calls),
        Figure(s, "dashboard p50", figures["dashboard_p50_ms"], "ms"),
        Figure(s, "dashboard p95", p95, "ms"),
        Figure(s, "rollup cost per processed order", figures["rollup_cost_per_order_ms"], "ms"),
    ]
    full = cfg.dashboard_orders >= DASHBOARD_TARGET_ORDERS
    bench.summary.append(
        Figure(
            SUMMARY,
            f"dashboard p95 at {cfg.dashboard_orders:,} orders",
            p95,
            "ms",
            target="<= 50 ms at 1,000,000 orders",
            passed=p95 <= 50 if full else None,  # not the target's size: no verdict
        )
    )


BACKLOG_ORDERS = 100_000
BACKLOG_LIMIT_S = 40.0  # per process count; past it the drain time is extrapolated
SUSTAINED_RATE = 200.0  # paid orders/s, the sustained end-to-end target
SUSTAINED_S = 60.0
RAMP = (200.0, 250.0, 300.0, 350.0)
# On 2 cores shared with PostgreSQL and the API, a second worker process has no core of its
# own: one does as well (create+paid at 200/s for 20 s: p95 97 ms with one, 107 ms with two;
# both sustain 250/s and fall behind at 350/s). A backlog drains 1.25-1.34x faster with two.
SUSTAINED_WORKERS = 1
RAMP_STEP_S = 10.0


async def _module(bench: Bench, name: str, *args: str) -> dict[str, Any]:
    """Run `python -m bench.<name>` (its own database, queue and table on stdout) and read the
    JSON it writes."""
    out = Path(bench.cfg.out).with_name(f"results-{name}-{args[1] if args else 'run'}.json")
    command = [sys.executable, "-m", f"bench.{name}", *args, "--out", str(out)]
    process = await asyncio.create_subprocess_exec(*command)
    if await process.wait() not in (0, 1):  # 1: it ran, and found a problem (reported below)
        raise BenchError(f"bench.{name} failed: {' '.join(command)}")
    result: dict[str, Any] = json.loads(out.read_text())
    return result


async def run_backlog(bench: Bench) -> None:
    """Worker throughput on a backlog of 100,000 stored paid orders, 1 then 2 processes."""
    result = await _module(
        bench,
        "drain",
        "--orders",
        str(BACKLOG_ORDERS),
        "--processes",
        "1,2",
        "--limit-s",
        str(BACKLOG_LIMIT_S),
    )
    bench.details["backlog"] = result
    rates = {}
    for r in result["results"]:
        rates[r["workers"]] = r["orders_per_s"]
        bench.summary.append(
            Figure(
                SUMMARY,
                f"drain of {r['backlog']:,} paid orders, {r['workers']} worker process(es)"
                + ("" if r["finished"] else " (extrapolated)"),
                r["drain_time_s"],
                "s",
            )
        )
    if rates.get(1) and rates.get(2):
        bench.summary.append(
            Figure(SUMMARY, "worker scaling 1 -> 2 processes", rates[2] / rates[1], "x")
        )


def pgbouncer_flag(bench: Bench) -> list[str]:
    return ["--pgbouncer"] if bench.cfg.pgbouncer else []


async def run_sustained(bench: Bench) -> None:
    """create + paid per order at 200 orders/s for 60 s, then a ramp for the highest rate
    with p95 <= 1 s (1 API process, SUSTAINED_WORKERS worker processes)."""
    target = await _module(
        bench,
        "e2e",
        "--rate",
        str(SUSTAINED_RATE),
        "--seconds",
        str(SUSTAINED_S),
        "--ramp",
        "",
        "--workers",
        str(SUSTAINED_WORKERS),
        *pgbouncer_flag(bench),
    )
    step = target["steps"][0]
    bench.summary += [
        Figure(
            SUMMARY,
            f"create+paid -> credit p95 at {SUSTAINED_RATE:g} orders/s, {SUSTAINED_S:g} s",
            1000 * step["p95_s"],
            "ms",
            target="<= 250 ms",
            passed=step["p95_s"] <= 0.25 and step["passed"],
        ),
        Figure(
            SUMMARY,
            f"create+paid -> credit p99 at {SUSTAINED_RATE:g} orders/s, {SUSTAINED_S:g} s",
            1000 * step["p99_s"],
            "ms",
            target="<= 1000 ms",
            passed=step["p99_s"] <= 1.0 and step["passed"],
        ),
    ]
    ramp = await _module(
        bench,
        "e2e",
        "--rate",
        str(RAMP[0]),
        "--seconds",
        str(RAMP_STEP_S),
        "--ramp",
        ",".join(str(r) for r in RAMP[1:]),
        "--ramp-seconds",
        str(RAMP_STEP_S),
        "--workers",
        str(SUSTAINED_WORKERS),
        *pgbouncer_flag(bench),
    )
    bench.details["sustained"] = {"target": target, "ramp": ramp}
    passing = [s["rate"] for s in ramp["steps"] if s["passed"]]
    bench.summary.append(
        Figure(
            SUMMARY,
            "highest sustained rate with p95 <= 1 s (create+paid)",
            max(passing) if passing else 0,
            "orders/s",
            target=">= 700 (aim)",
            passed=bool(passing) and max(passing) >= 700,
        )
    )


# Each benchmark is an async function of the Bench, run in this order (`--only` picks some).
# To add one: write `async def run_x(bench: Bench) -> None` (in its own module if you like),
# append Figures to `bench.figures` (its own section) and the figures that have a target to
# `bench.summary` (section SUMMARY, with target/passed), raw data to `bench.details[...]`, and
# register it here. `bench.start_api`, `bench.start_worker`/`stop_worker`, `bench.send_at_rate`
# and `CpuMeter(bench.label)` are there to use; stop what you start.
BENCHMARKS: list[tuple[str, Callable[[Bench], Awaitable[None]]]] = [
    ("intake", Bench.intake),
    ("drain", run_drain),
    ("e2e", run_end_to_end),
    ("backlog", run_backlog),
    ("sustained", run_sustained),
    ("calculation", run_calculation),
    ("dashboard", run_dashboard),
]
