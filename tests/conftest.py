"""Test infrastructure on real servers.

PostgreSQL and Redis come from CASHBACK_DATABASE_URL / CASHBACK_REDIS_URL when set, else from
embedded servers started for the run. The schema is built once by the migrations into a
template database; each test gets a fresh clone of it (CREATE DATABASE … TEMPLATE), so tests
that run a real worker with its own connections stay isolated, and each test has its own
queue name in Redis.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import hypothesis
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from app import embedded, migrate
from app.config import Environment, Settings
from tests.support import ADMIN_TOKEN, Stack, open_stack

TEMPLATE_DB = f"cashback_test_template_{os.getpid()}"

# Under mutmut (`make mutation`) every function goes through a trampoline: slower, and each
# mutant must meet the same examples, so no deadline and a fixed search.
hypothesis.settings.register_profile("mutation", deadline=None, derandomize=True)
if "MUTANT_UNDER_TEST" in os.environ:
    hypothesis.settings.load_profile("mutation")


def libpq_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    db_url = os.environ.get("CASHBACK_DATABASE_URL")
    redis_url = os.environ.get("CASHBACK_REDIS_URL")
    if db_url and redis_url:
        yield db_url, redis_url
        return
    # Not under pytest's tmp_path: another pytest run prunes old ones, and PostgreSQL stops
    # when its data directory disappears.
    data_dir = Path(tempfile.mkdtemp(prefix="cashback-test-servers-"))
    started = embedded.start(data_dir, postgres=not db_url, redis=not redis_url)
    try:
        db_url = db_url or started.database_url
        redis_url = redis_url or started.redis_url
        assert db_url and redis_url
        yield db_url, redis_url
    finally:
        started.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_url(servers: tuple[str, str]) -> AsyncIterator[str]:
    admin = await asyncpg.connect(libpq_url(servers[0]))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        url = with_database(servers[0], TEMPLATE_DB)
        # alembic's env runs its own event loop: give it a thread of its own.
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database_url(servers: tuple[str, str], template_url: str) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template, dropped after the test."""
    name = f"cashback_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(libpq_url(servers[0]))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE_DB}"')
        yield with_database(servers[0], name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
def settings(servers: tuple[str, str], database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env=Environment.test,
        database_url=database_url,
        redis_url=servers[1],
        admin_token=SecretStr(ADMIN_TOKEN),
        secret_key=SecretStr("test-secret-key"),
        data_dir=tmp_path,
        queue_name=f"cashback:test:{uuid.uuid4().hex}",
        body_limit=64 * 1024,
        worker_poll_delay=0.01,
        create_settle_s=0,  # a burst run handles what was delivered (tests/inbox: with it on)
    )


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    """The real app over ASGI, on a fresh database, with a real worker on demand."""
    async with open_stack(settings) as opened:
        yield opened
