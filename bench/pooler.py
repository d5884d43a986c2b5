"""A real PgBouncer (Debian's `pgbouncer`) in transaction pooling mode, started for a run: the
bench's `--pgbouncer`, and the tests that run the service and worker through one.

    bouncer = PgBouncer.start("postgresql+asyncpg://postgres@127.0.0.1:5432/x", workdir)
    bouncer.url("cashback_bench")  # postgresql+asyncpg://postgres@127.0.0.1:<port>/cashback_bench
    bouncer.service_env("cashback_bench")  # CASHBACK_DATABASE_URL and CASHBACK_DATABASE_POOLER
    bouncer.stop()

It listens on a free port of 127.0.0.1 (no Unix socket) and forwards every database name to the
server of `server_url` (a TCP host, or the socket directory in `?host=` of an embedded server) as
that URL's user; clients log in with `trust` against a userlist that names only that user.
PgBouncer refuses to run as root: as root it runs as the owner of the server's socket directory
(an embedded server's, which only that user may enter), else as `postgres` (else `nobody`); it
reads its files before it switches.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

DEBIAN_BINARY = "/usr/sbin/pgbouncer"
START_LIMIT_S = 10.0


def binary() -> str | None:
    """The pgbouncer executable, or None when it is not installed (`apt-get install pgbouncer`)."""
    found = shutil.which("pgbouncer")
    if found:
        return found
    return DEBIAN_BINARY if os.access(DEBIAN_BINARY, os.X_OK) else None


def unprivileged_user() -> str | None:
    """The user to run a server that refuses root (PgBouncer, PostgreSQL) as; None unless root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root with no `postgres` or `nobody` user to run servers as")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgBouncer:
    process: subprocess.Popen[bytes]
    port: int
    user: str  # the database user, on both sides
    log: Path

    @classmethod
    def start(
        cls,
        server_url: str,
        workdir: Path,
        *,
        pool_size: int = 20,
        max_clients: int = 1000,
    ) -> PgBouncer:
        """Start one (its files in `workdir`) and wait until it accepts connections.
        `pool_size`: server connections per database (and user), however many clients."""
        executable = binary()
        if executable is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        server = make_url(server_url)
        user = server.username or "postgres"
        host = server.host or str(server.query.get("host") or "127.0.0.1")
        target = f"host={host} port={server.port or 5432} user={user}"
        if server.password:
            target += f" password={server.password}"
        port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        users = workdir / "userlist.txt"
        users.write_text(f'"{user}" ""\n')
        ini = workdir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            f"max_client_conn = {max_clients}\n"
            f"admin_users = {user}\n"
        )
        as_user = unprivileged_user()
        if as_user and host.startswith("/"):  # a socket directory: its owner can reach it
            owner = pwd.getpwuid(Path(host).stat().st_uid).pw_name
            as_user = owner if owner != "root" else as_user
        argv = [executable, *(["-u", as_user] if as_user else []), str(ini)]
        log = workdir / "pgbouncer.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )
        bouncer = cls(process, port, user, log)
        try:
            bouncer._wait_listening()
        except BaseException:
            bouncer.stop()
            raise
        return bouncer

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_LIMIT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited at start:\n{self.log_tail()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"pgbouncer did not listen within {START_LIMIT_S:.0f} s:\n"
                        + self.log_tail()
                    ) from None
                time.sleep(0.05)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` through this PgBouncer."""
        return f"postgresql+asyncpg://{self.user}@127.0.0.1:{self.port}/{database}"

    def service_env(self, database: str) -> dict[str, str]:
        """What `cashback api` and `cashback worker` need to run through it."""
        return {
            "CASHBACK_DATABASE_URL": self.url(database),
            "CASHBACK_DATABASE_POOLER": "pgbouncer",
        }

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # waits for the transactions in flight
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
