"""What every benchmark needs of PostgreSQL besides the service: the server's durability
settings (recorded, and a run refused when commits are not durable), which server processes
are ours (for CPU accounting), and the integrity check that every figure rests on.

A figure is only worth something if the work behind it was done right: `check_orders` says
whether every order of a run was credited exactly once with what it earns, and whether the
ledger holds what is owed. Each benchmark runs it, and a problem fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from bench.cpu import NO_PROC, processes

# Recorded with every run: they decide what a commit costs, so figures without them mislead.
SETTINGS = ("server_version", "fsync", "synchronous_commit", "full_page_writes", "autovacuum")
AUTOVACUUM_STANDIN_S = 15.0  # seconds between the stand-in's passes (AutovacuumStandIn)


class DurabilityOff(RuntimeError):
    """The server acknowledges commits it may lose: its figures would flatter the service."""


async def server_settings(conn: asyncpg.Connection) -> dict[str, str]:
    return {name: str(await conn.fetchval(f"SHOW {name}")) for name in SETTINGS}


def durability_problem(settings: dict[str, str]) -> str | None:
    off = [name for name in ("fsync", "synchronous_commit") if settings.get(name) == "off"]
    if not off:
        return None
    return (
        f"{' and '.join(off)} is off on this PostgreSQL server: a commit is acknowledged before "
        "it is on disk, so throughput and latency would be better than a durable server's. "
        "Turn it on (or point --postgres at a server where it is) to benchmark."
    )


def settings_notes(settings: dict[str, str]) -> list[str]:
    """What a reader should know about the server besides durability."""
    notes = []
    if settings.get("autovacuum") == "off":
        notes.append(
            "autovacuum is off on this server: the runs that write for long (end to end, "
            f"backlog) VACUUM (ANALYZE) their database every {AUTOVACUUM_STANDIN_S:g} s in its "
            "place, and its CPU counts as PostgreSQL's"
        )
    if settings.get("full_page_writes") == "off":
        notes.append("full_page_writes is off: WAL volume is below a production server's")
    return notes


class AutovacuumStandIn:
    """What a production server's autovacuum does, on a server where it is off (this
    machine's): `VACUUM (ANALYZE)` of the run's database every AUTOVACUUM_STANDIN_S, from a
    connection of its own to that database, so its CPU counts as PostgreSQL's (a backend of
    the run's database). Without it nothing is ever analyzed: the planner knows no table's
    size or spread (one shop holding every order looks as selective as any), and dead index
    entries of status updates pile up, so a ramp's later steps pay for the earlier ones as no
    production server would (the 500/s step of a ramp: p95 2.4 s, against 0.2 s on its own)."""

    def __init__(self, dsn: str, settings: dict[str, str]) -> None:
        self.dsn = dsn
        self.on = settings.get("autovacuum") == "off"
        self.runs = 0
        self.seconds = 0.0  # spent vacuuming, all runs
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.on:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while True:
                await asyncio.sleep(AUTOVACUUM_STANDIN_S)
                began = time.perf_counter()
                await conn.execute("VACUUM (ANALYZE)")
                self.seconds += time.perf_counter() - began
                self.runs += 1
        finally:
            await conn.close()


async def require_durable(dsn: str) -> dict[str, str]:
    """The server's settings; raises DurabilityOff when commits are not durable."""
    conn = await asyncpg.connect(dsn)
    try:
        settings = await server_settings(conn)
    finally:
        await conn.close()
    problem = durability_problem(settings)
    if problem:
        raise DurabilityOff(problem)
    return settings


async def recreate_database(server: str, name: str) -> None:
    """Drop and create database `name` (a plain identifier) on `server` (a URL without one)."""
    admin = await asyncpg.connect(f"{server}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def postmaster_pid(conn: asyncpg.Connection) -> int:
    """The server's main process: its children are the server's processes on this machine."""
    backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    return processes().get(backend, NO_PROC).ppid  # -1: not on this machine


# One row for the orders of a shop (all of them, or those with the given external ids): what
# they owe, and what the ledger holds for them, per order.
_INTEGRITY = """
WITH o AS (
    SELECT id, status, cashback_amount FROM orders
    WHERE shop_id = $1 AND ($2::text[] IS NULL OR external_id = ANY($2::text[]))
), c AS (
    SELECT l.order_id, count(*) AS n, sum(l.amount) AS amount
    FROM ledger_entries l JOIN o ON o.id = l.order_id
    WHERE l.shop_id = $1 AND l.kind = 'credit'
    GROUP BY l.order_id
)
SELECT count(*) AS orders,
       count(*) FILTER (WHERE o.status = 'processed') AS processed,
       count(*) FILTER (WHERE o.status = 'processed' AND coalesce(o.cashback_amount, 0) <= 0)
           AS earning_nothing,
       count(*) FILTER (WHERE o.status = 'processed' AND c.n IS NULL) AS processed_uncredited,
       count(*) FILTER (WHERE o.status <> 'processed' AND c.n IS NOT NULL) AS credited_unprocessed,
       count(*) FILTER (WHERE c.n > 1) AS credited_twice,
       count(*) FILTER (WHERE c.n = 1 AND c.amount <> o.cashback_amount) AS wrong_amount,
       coalesce(sum(c.amount), 0)::bigint AS credited,
       coalesce(sum(o.cashback_amount) FILTER (WHERE o.status = 'processed'), 0)::bigint AS owed
FROM o LEFT JOIN c ON c.order_id = o.id
"""

# Ledger movements of the shop that are not one of its orders' credits (none are expected).
_OTHER_ENTRIES = """
SELECT count(*) FROM ledger_entries
WHERE shop_id = $1 AND (kind <> 'credit' OR order_id IS NULL)
"""


@dataclass
class Integrity:
    expected: int  # orders the run sent
    orders: int = 0  # of them, in the orders table
    processed: int = 0
    credited_minor: int = 0  # the ledger's credits for them
    owed_minor: int = 0  # the cashback of the processed ones
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


async def check_orders(
    conn: asyncpg.Connection, shop_id: int, expected: int, external_ids: list[str] | None = None
) -> Integrity:
    """Every order sent is stored, processed, and credited exactly once with its cashback, and
    the ledger holds what those orders are owed (with `external_ids=None`: the whole shop, whose
    ledger must then hold nothing else)."""
    row = await conn.fetchrow(_INTEGRITY, shop_id, external_ids)
    result = Integrity(
        expected=expected,
        orders=int(row["orders"]),
        processed=int(row["processed"]),
        credited_minor=int(row["credited"]),
        owed_minor=int(row["owed"]),
    )
    problems = result.problems
    if result.orders != expected:
        problems.append(
            f"{expected - result.orders} of {expected} orders are not in the orders table"
        )
    if result.processed != result.orders:
        problems.append(f"{result.orders - result.processed} orders not processed (not credited)")
    for column, what in (
        ("earning_nothing", "processed orders earn nothing (the bench's orders all earn)"),
        ("processed_uncredited", "processed orders have no credit in the ledger"),
        ("credited_unprocessed", "orders have a credit but are not processed"),
        ("credited_twice", "orders are credited more than once"),
        ("wrong_amount", "orders are credited another amount than their cashback"),
    ):
        if row[column]:
            problems.append(f"{row[column]} {what}")
    if result.credited_minor != result.owed_minor:
        problems.append(
            f"the ledger credits {result.credited_minor} minor units, the orders are owed "
            f"{result.owed_minor}"
        )
    if external_ids is None and (other := int(await conn.fetchval(_OTHER_ENTRIES, shop_id))):
        problems.append(f"{other} ledger entries of the shop are not an order's credit")
    return result
