"""Pause points without production hooks: test-only triggers in the test's own cloned database.

A trigger on a table makes the transaction that writes to it sleep in PostgreSQL, the first
`times` times only (counted by a sequence, which a rollback does not undo).
"""

from __future__ import annotations

import asyncpg

from tests.conftest import libpq_url


async def slow_inserts(database_url: str, table: str, *, seconds: float, times: int) -> None:
    """The next `times` INSERTs into `table` each sleep `seconds` before writing their row."""
    name = f"fault_slow_{table}"
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute(
            f"""
            DROP TRIGGER IF EXISTS {name} ON {table};
            DROP SEQUENCE IF EXISTS {name};
            CREATE SEQUENCE {name};
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('{name}') <= {int(times)} THEN PERFORM pg_sleep({float(seconds)}); END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON {table}
              FOR EACH ROW EXECUTE FUNCTION {name}();
            """
        )
    finally:
        await conn.close()


async def clear_fault(database_url: str, table: str) -> None:
    name = f"fault_slow_{table}"
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    finally:
        await conn.close()


async def slowed(database_url: str, table: str) -> int:
    """How many INSERTs into `table` reached the trigger so far."""
    name = f"fault_slow_{table}"
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        value = await conn.fetchval(
            f"SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM {name}"
        )
        return int(value)
    finally:
        await conn.close()


async def failing_inserts(database_url: str, table: str, *, times: int) -> None:
    """The next `times` INSERTs into `table` fail (a transient error, as a restarting server
    gives); `slowed` counts them too."""
    name = f"fault_slow_{table}"
    conn = await asyncpg.connect(libpq_url(database_url))
    try:
        await conn.execute(
            f"""
            DROP TRIGGER IF EXISTS {name} ON {table};
            DROP SEQUENCE IF EXISTS {name};
            CREATE SEQUENCE {name};
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF nextval('{name}') <= {int(times)} THEN
                RAISE EXCEPTION 'injected failure' USING ERRCODE = 'lock_not_available';
              END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER {name} BEFORE INSERT ON {table}
              FOR EACH ROW EXECUTE FUNCTION {name}();
            """
        )
    finally:
        await conn.close()
