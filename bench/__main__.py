"""Benchmark the cashback service on this machine against the targets of issue #19.

    uv run python -m bench                 # every benchmark, under 10 minutes
    uv run python -m bench --quick --only intake

Benchmarks (BENCHMARKS in bench/run.py; fresh databases, local PostgreSQL and Redis): intake
(the no-I/O ceiling app and `cashback api`, 1 and 2 processes, closed then open loop), backlog
(a stored backlog drained to the last credit), sustained (create + paid at rising rates,
paid -> credit seen on an SSE client), calculation, dashboard. Prints one table (targets,
ratios to them, pass/fail) and writes bench/results.json; refuses a PostgreSQL server without
durable commits. Subprocesses are stopped on exit, error or Ctrl-C; the databases are kept for
inspection (dropped at the next run). The exit status is 1 when a run found a problem (a
request failed, an event was not stored, an order not credited exactly once). See
bench/README.md.
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

from bench.pg import DurabilityOff
from bench.run import BENCHMARKS, SUMMARY, TIME_BUDGET_S, Bench, BenchError, Config, finish
from bench.stats import table, write_json


def parse_args(argv: list[str] | None) -> Config:
    d = Config()
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the cashback service against the targets of issue #19.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    names = [name for name, _ in BENCHMARKS]
    p.add_argument(
        "--only", default=",".join(names), help="comma-separated, of: " + ", ".join(names)
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="short runs (5 s intake, 8 s ramp steps, a 5,000-order backlog, a 50,000-order "
        "dashboard): a check while iterating, not the figures of record",
    )
    p.add_argument(
        "--intake-processes",
        default=",".join(map(str, d.intake_processes)),
        help="comma-separated process counts of the intake runs (ceiling and service each)",
    )
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default=d.loadgen,
        help="closed-loop intake load generator; auto = wrk when on PATH, else python",
    )
    p.add_argument("--wrk-threads", type=int, default=d.wrk_threads)
    p.add_argument(
        "--loadgen-processes",
        type=int,
        default=d.loadgen_processes,
        help="processes of the python load generator (open loop, and closed without wrk)",
    )
    p.add_argument("--connections", type=int, default=d.connections, help="of the intake runs")
    p.add_argument("--intake-seconds", type=int, default=d.intake_seconds, help="closed loop")
    p.add_argument(
        "--open-loop-seconds",
        type=float,
        default=d.open_loop_seconds,
        help="intake latency run, at 0.70 x the ceiling's rate",
    )
    p.add_argument(
        "--pool-size",
        type=int,
        default=d.pool_size,
        help="distinct pre-signed order bodies for the intake runs",
    )
    p.add_argument(
        "--backlog-orders",
        type=int,
        default=d.backlog_orders,
        help="backlog drained to the last credit by 1, then 2 worker processes",
    )
    p.add_argument(
        "--ramp",
        default=",".join(f"{r:g}" for r in d.ramp),
        help="create+paid orders/s of the end-to-end steps, rising",
    )
    p.add_argument("--step-seconds", type=float, default=d.step_seconds)
    p.add_argument("--seed", type=int, default=d.seed, help="of the create -> paid gaps")
    p.add_argument(
        "--gap-max",
        type=float,
        default=d.gap_max_s,
        help="create -> paid gap: uniform from 0 to this, in seconds",
    )
    p.add_argument(
        "--api-workers",
        type=int,
        choices=(1, 2),
        default=d.api_workers,
        help="uvicorn worker processes of the API in the end-to-end ramp",
    )
    p.add_argument(
        "--workers", type=int, default=d.workers, help="worker processes in the end-to-end ramp"
    )
    p.add_argument(
        "--customers",
        type=int,
        default=d.customers,
        help="distinct customers the orders are spread over",
    )
    p.add_argument("--calc-iterations", type=int, default=d.calc_iterations)
    p.add_argument(
        "--dashboard-orders",
        type=int,
        default=d.dashboard_orders,
        help="orders of this run's dashboard shop; the target's 10,000,000 are "
        "`make bench-dashboard`'s",
    )
    p.add_argument("--dashboard-calls", type=int, default=d.dashboard_calls)
    p.add_argument("--postgres", default=d.postgres, help="server URL (no database)")
    p.add_argument("--database", default=d.database, help="dropped and re-created")
    p.add_argument("--redis", default=d.redis, help="redis://host:port/db")
    p.add_argument("--queue", default=d.queue, help="arq queue name (keep it unique)")
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
    p.add_argument("--out", type=Path, default=d.out, help="results JSON")
    a = p.parse_args(argv)
    only = tuple(name.strip() for name in a.only.split(",") if name.strip())
    unknown = set(only) - set(names)
    if unknown:
        raise BenchError(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    try:
        processes = tuple(int(n) for n in a.intake_processes.split(",") if n.strip())
        ramp = tuple(float(r) for r in a.ramp.split(",") if r.strip())
    except ValueError as exc:
        raise BenchError(f"--intake-processes / --ramp: {exc}") from exc
    q = a.quick
    return Config(
        only=only,
        intake_processes=processes,
        loadgen=a.loadgen,
        wrk_threads=a.wrk_threads,
        loadgen_processes=a.loadgen_processes,
        connections=a.connections,
        intake_seconds=min(a.intake_seconds, 5) if q else a.intake_seconds,
        open_loop_seconds=min(a.open_loop_seconds, 3.0) if q else a.open_loop_seconds,
        pool_size=a.pool_size,
        backlog_orders=min(a.backlog_orders, 5_000) if q else a.backlog_orders,
        ramp=ramp,
        step_seconds=min(a.step_seconds, 8.0) if q else a.step_seconds,
        seed=a.seed,
        gap_max_s=a.gap_max,
        api_workers=a.api_workers,
        workers=a.workers,
        customers=a.customers,
        calc_iterations=a.calc_iterations,
        dashboard_orders=min(a.dashboard_orders, 50_000) if q else a.dashboard_orders,
        dashboard_calls=a.dashboard_calls,
        postgres=a.postgres,
        database=a.database,
        redis=a.redis,
        queue=a.queue,
        db_pool_size=a.db_pool_size,
        worker_max_jobs=a.worker_max_jobs,
        keep_files=a.keep_files,
        service_log_level=a.service_log_level,
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
    except DurabilityOff as exc:
        print(table(bench.figures))
        print(f"\nbench: refusing to benchmark: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)
        return 2
    except BenchError as exc:
        failure = str(exc)
    except (KeyboardInterrupt, asyncio.CancelledError):
        failure = "interrupted"
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the clean-up finish
        bench.procs.stop_all()
        bench.release()
    total = time.perf_counter() - began
    bench.details["total_s"] = round(total, 1)
    if failure:
        bench.details["error"] = failure
        bench.problem(f"the run stopped: {failure}")
    finish(bench, total)
    figures = bench.figures + [f for f in bench.summary if f.section == SUMMARY]
    print(table(figures))
    with contextlib.suppress(OSError):
        write_json(cfg.out, figures, bench.details)
        print(f"\nwrote {cfg.out} (run took {total:.0f} s)")
    for note in bench.details["notes"]:
        print(f"note: {note}")
    for problem in bench.details["problems"]:
        print(f"PROBLEM: {problem}")
    if bench.details["problems"]:
        print("\nbench: the run found problems (above)", file=sys.stderr)
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
