"""Benchmark the cashback service on this machine against what the machine can do.

    uv run python -m bench                 # every benchmark, under 10 minutes
    uv run python -m bench --quick --only intake

Benchmarks (BENCHMARKS in bench/run.py; a fresh `cashback_bench` database, local PostgreSQL
and Redis): intake (the no-I/O ceiling app and `cashback api`, 1 and 2 processes), drain (the
worker on the intake backlog), e2e (paid -> credit at a fixed rate), calculation, dashboard.
Prints one table (with targets, ratios to the ceiling, pass/fail) and writes
bench/results.json. Subprocesses are stopped on exit, error or Ctrl-C; the database is kept
for inspection (dropped at the next run). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from bench.run import BENCHMARKS, TIME_BUDGET_S, Bench, BenchError, Config
from bench.stats import table, write_json


def parse_args(argv: list[str] | None) -> Config:
    d = Config()
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark webhook intake and paid → credit latency.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--only",
        default=",".join(name for name, _ in BENCHMARKS),
        help="comma-separated benchmarks to run, of: " + ", ".join(name for name, _ in BENCHMARKS),
    )
    p.add_argument(
        "--api-workers",
        type=int,
        choices=(1, 2),
        default=d.api_workers,
        help="uvicorn worker processes of `cashback api` in the end-to-end run",
    )
    p.add_argument(
        "--intake-processes",
        default=",".join(map(str, d.intake_processes)),
        help="comma-separated process counts of the intake runs (ceiling and service each)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smaller dashboard (50,000 orders) and 5 s intake runs: a quick check, not the "
        "figures of record",
    )
    p.add_argument(
        "--dashboard-orders",
        type=int,
        default=d.dashboard_orders,
        help="orders of the dashboard's shop; its target is at 1,000,000, whose seed alone "
        "takes minutes (`make bench-dashboard` runs that size on its own)",
    )
    p.add_argument("--dashboard-calls", type=int, default=d.dashboard_calls)
    p.add_argument("--calc-iterations", type=int, default=d.calc_iterations)
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default=d.loadgen,
        help="intake load generator; auto = wrk when on PATH, else python",
    )
    p.add_argument("--wrk-threads", type=int, default=d.wrk_threads)
    p.add_argument(
        "--loadgen-processes",
        type=int,
        default=d.loadgen_processes,
        help="processes of the python load generator",
    )
    p.add_argument(
        "--connections",
        type=int,
        default=d.connections,
        help="concurrent connections of the intake phase",
    )
    p.add_argument("--intake-seconds", type=int, default=d.intake_seconds)
    p.add_argument(
        "--pool-size",
        type=int,
        default=d.pool_size,
        help="distinct pre-signed order bodies for the intake phase",
    )
    p.add_argument(
        "--drain-seconds",
        type=float,
        default=d.drain_seconds,
        help="worker run on the intake backlog (0: skip)",
    )
    p.add_argument("--e2e-rate", type=float, default=d.e2e_rate, help="webhooks per second")
    p.add_argument("--e2e-seconds", type=float, default=d.e2e_seconds)
    p.add_argument(
        "--settle-seconds",
        type=float,
        default=d.settle_seconds,
        help="longest wait for the last credits after the last webhook",
    )
    p.add_argument(
        "--customers",
        type=int,
        default=d.customers,
        help="distinct customers the orders are spread over",
    )
    p.add_argument("--postgres", default=d.postgres, help="server URL (no database)")
    p.add_argument("--database", default=d.database, help="dropped and re-created")
    p.add_argument("--redis", default=d.redis, help="redis://host:port/db")
    p.add_argument("--queue", default=d.queue, help="arq queue name (keep it unique)")
    p.add_argument("--port", type=int, default=d.port, help="API port; 0 picks a free one")
    p.add_argument(
        "--db-pool-size",
        type=int,
        default=None,
        help="CASHBACK_DB_POOL_SIZE of the API and worker (default: the app's)",
    )
    p.add_argument(
        "--worker-max-jobs",
        type=int,
        default=None,
        help="CASHBACK_WORKER_MAX_JOBS (default: the app's)",
    )
    p.add_argument(
        "--keep-files",
        action="store_true",
        help="keep the temporary directory (logs, payload pool)",
    )
    p.add_argument(
        "--service-log-level",
        default=d.service_log_level,
        help="CASHBACK_LOG_LEVEL of the API and worker (logs are in the kept files)",
    )
    p.add_argument(
        "--pgbouncer",
        action="store_true",
        help="run the API and workers through a PgBouncer this run starts (transaction pooling)",
    )
    p.add_argument("--out", type=Path, default=d.out, help="results JSON")
    a = p.parse_args(argv)
    only = tuple(name.strip() for name in a.only.split(",") if name.strip())
    unknown = set(only) - {name for name, _ in BENCHMARKS}
    if unknown:
        raise BenchError(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    try:
        processes = tuple(int(n) for n in a.intake_processes.split(",") if n.strip())
    except ValueError as exc:
        raise BenchError(f"--intake-processes: {exc}") from exc
    return Config(
        only=only,
        intake_processes=processes,
        dashboard_orders=min(a.dashboard_orders, 50_000) if a.quick else a.dashboard_orders,
        dashboard_calls=a.dashboard_calls,
        calc_iterations=a.calc_iterations,
        api_workers=a.api_workers,
        loadgen=a.loadgen,
        wrk_threads=a.wrk_threads,
        loadgen_processes=a.loadgen_processes,
        connections=a.connections,
        intake_seconds=min(a.intake_seconds, 5) if a.quick else a.intake_seconds,
        pool_size=a.pool_size,
        drain_seconds=a.drain_seconds,
        e2e_rate=a.e2e_rate,
        e2e_seconds=a.e2e_seconds,
        settle_seconds=a.settle_seconds,
        customers=a.customers,
        postgres=a.postgres,
        database=a.database,
        redis=a.redis,
        queue=a.queue,
        port=a.port,
        db_pool_size=a.db_pool_size,
        worker_max_jobs=a.worker_max_jobs,
        keep_files=a.keep_files,
        service_log_level=a.service_log_level,
        pgbouncer=a.pgbouncer,
        out=a.out,
    )


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


async def _run_bounded(bench: Bench, budget: float) -> None:
    """The asynchronous phases, cancelled by SIGTERM and by the time budget."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        async with asyncio.timeout(budget):
            await bench.run()
    except TimeoutError as exc:
        raise BenchError(f"the run passed its {TIME_BUDGET_S:.0f} s budget") from exc


def main(argv: list[str] | None = None) -> int:
    began = time.perf_counter()
    signal.signal(signal.SIGTERM, _terminate)
    try:
        cfg = parse_args(argv)
        cfg.validate()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="cashback-bench-"))
    bench = Bench(cfg, workdir)
    failure: str | None = None
    try:
        print(f"bench: setting up database {cfg.database!r} …", file=sys.stderr, flush=True)
        bench.setup()
        asyncio.run(_run_bounded(bench, TIME_BUDGET_S - (time.perf_counter() - began)))
    except BenchError as exc:
        failure = str(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        failure = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        bench.procs.stop_all()
        bench.release()
    bench.details["total_s"] = round(time.perf_counter() - began, 1)
    problems = [*bench.details.get("problems", [])]
    if "e2e_problem" in bench.details:
        problems.append(bench.details["e2e_problem"])
    problem = "; ".join(problems) or None
    if failure:
        bench.details["error"] = failure
    if bench.figures:
        figures = bench.figures + bench.summary
        print(table(figures))
        with contextlib.suppress(OSError):
            write_json(cfg.out, figures, bench.details)
            print(f"\nwrote {cfg.out} (run took {bench.details['total_s']} s)")
    for note in bench.details.get("interference", []):
        print(f"note: {note}", file=sys.stderr)
    if failure or problem:
        print(f"\nbench: {failure or problem}", file=sys.stderr)
        if any(workdir.iterdir()):
            print(f"bench: logs kept in {workdir}", file=sys.stderr)
        else:
            workdir.rmdir()
        return 1
    if cfg.keep_files:
        print(f"files kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
