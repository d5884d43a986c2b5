"""What the bench modules run by themselves (`bench.drain`, `bench.e2e`) share: a database and a
Redis database of their own, reserved for the run, a durable PostgreSQL, shops made by the
`cashback` command, and the service's processes.

A module's Redis database holds its queue and a lock: a second run of the same module (another
person's, on a shared machine) refuses to start rather than flush the first one's queue.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from app import migrate
from bench.pg import DurabilityOff, recreate_database, require_durable, settings_notes
from bench.procs import Process, Processes, cashback_command
from bench.stats import finite

REPO = Path(__file__).resolve().parent.parent
LOCK_KEY = "bench:lock"
LOCK_MS = 15 * 60 * 1000  # outlives any run, in case one is killed


@dataclass
class Env:
    database: str
    redis: str
    queue: str
    postgres: str = "postgresql://postgres@127.0.0.1:5432"
    log_level: str = "WARNING"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dsn(self) -> str:
        return f"{self.postgres}/{self.database}"

    @property
    def sqlalchemy_url(self) -> str:
        return self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)

    def service_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            CASHBACK_DATABASE_URL=self.sqlalchemy_url,
            CASHBACK_REDIS_URL=self.redis,
            CASHBACK_QUEUE_NAME=self.queue,
            CASHBACK_LOG_LEVEL=self.log_level,
            CASHBACK_WORKER_METRICS_PORT="0",  # several workers on one machine
            PYTHONPATH=str(REPO),  # this checkout's code, wherever the shared venv points
        )
        env.update(self.extra)
        return env


@dataclass(frozen=True)
class BenchShop:
    id: int
    domain: str
    webhook_secret: str
    api_key: str


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def take_lock(redis: Redis, key: str, ms: int) -> float | None:
    """Reserve something for this run with a key that expires (in case the run is killed);
    None when taken, else the seconds the current holder keeps it at most."""
    if await redis.set(key, os.getpid(), nx=True, px=ms):
        return None
    return int(await redis.pttl(key)) / 1000


async def _reserve_redis(env: Env) -> None:
    """Take the module's Redis database for this run, then empty it (the lock aside)."""
    redis = Redis.from_url(env.redis)
    try:
        if (left := await take_lock(redis, LOCK_KEY, LOCK_MS)) is not None:
            raise SystemExit(
                f"another run holds Redis {env.redis} (for {left:.0f} s more at most; delete "
                f"key {LOCK_KEY!r} there if that run is dead)"
            )
        await _empty(redis)
    finally:
        await redis.aclose()


async def _empty(redis: Redis) -> None:
    stale = [k async for k in redis.scan_iter(count=1000) if k != LOCK_KEY.encode()]
    for at in range(0, len(stale), 3000):
        await redis.delete(*stale[at : at + 3000])


async def clear_queue(env: Env) -> None:
    """Empty the module's Redis database but for the lock: arq keeps a finished job's id for a
    while and silently skips enqueueing that id again, so the next phase's rings would vanish."""
    redis = Redis.from_url(env.redis)
    try:
        await _empty(redis)
    finally:
        await redis.aclose()


def release(env: Env) -> None:
    """Empty the module's Redis database, lock included (once its processes are gone)."""

    async def flush() -> None:
        redis = Redis.from_url(env.redis)
        try:
            await redis.flushdb()
        finally:
            await redis.aclose()

    asyncio.run(flush())


def setup(env: Env) -> dict[str, str]:
    """Refuse a server that does not make commits durable; then a fresh database and queue.
    Returns the server's settings (recorded with the figures)."""
    try:
        settings = asyncio.run(require_durable(f"{env.postgres}/postgres"))
    except DurabilityOff as exc:
        raise SystemExit(f"refusing to benchmark: {exc}") from exc
    for line in settings_notes(settings):
        print(f"note: {line}", file=sys.stderr)
    asyncio.run(_reserve_redis(env))
    asyncio.run(recreate_database(env.postgres, env.database))
    migrate.upgrade(env.sqlalchemy_url)
    return settings


def create_shop(env: Env, domain: str) -> BenchShop:
    secret = "whsec_bench_" + secrets.token_urlsafe(18)
    argv = [*cashback_command(), "shops", "create", "--domain", domain]
    argv += ["--webhook-secret", secret, "--json"]
    done = subprocess.run(
        argv, env=env.service_env(), cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"`cashback shops create` failed:\n{done.stderr[-2000:]}")
    created = json.loads(done.stdout.strip().splitlines()[-1])
    return BenchShop(
        int(created["id"]),
        str(created["domain"]),
        str(created["webhook_secret"]),
        str(created["api_key"]),
    )


def start_workers(
    env: Env, procs: Processes, count: int, logdir: Path, prefix: str = "worker"
) -> list[Process]:
    return [
        procs.start(
            f"{prefix}{i}",
            [*cashback_command(), "worker"],
            env.service_env(),
            logdir / f"{prefix}{i}.log",
            REPO,
        )
        for i in range(count)
    ]


def start_api(env: Env, procs: Processes, port: int, workers: int, logdir: Path) -> Process:
    argv = [*cashback_command(), "api", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers)]
    return procs.start("api", argv, env.service_env(), logdir / "api.log", REPO)


async def wait_ready(base_url: str, api: Process, workers: int = 1) -> None:
    deadline = time.perf_counter() + 90
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.perf_counter() < deadline:
            if not api.running:
                raise SystemExit(f"the API exited:\n{api.log_tail()}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    if workers > 1:
                        await asyncio.sleep(5.0)  # one process answered; let the others boot
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"the API is not ready after 90 s:\n{api.log_tail()}")


def write_results(path: Path, document: dict[str, Any]) -> None:
    path.write_text(json.dumps(finite(document), indent=2, default=str) + "\n")
