"""Database plumbing: the declarative base, engine and session factory, one commit per unit.

Behind a PgBouncer in transaction pooling mode (`pooler="pgbouncer"`) consecutive transactions
of one client connection may run on different server connections, so nothing may outlive a
transaction on the server. asyncpg and SQLAlchemy keep prepared statements across transactions
by default; there they are turned off and every statement is the unnamed one, parsed again in
the round trip that runs it (asyncpg does this when its statement cache is off). Named ones,
even with unique names, would be left behind on whichever server connection ran them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BigInteger, DateTime, MetaData, func
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.config import DatabasePooler

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


class UpdatedAtMixin:
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


# asyncpg's statement cache off (then it uses the unnamed statement), SQLAlchemy's too, and the
# unnamed statement for what SQLAlchemy prepares.
UNPREPARED: dict[str, Any] = {
    "statement_cache_size": 0,
    "prepared_statement_cache_size": 0,
    "prepared_statement_name_func": lambda: "",
}


def connect_args(pooler: DatabasePooler) -> dict[str, Any]:
    return dict(UNPREPARED) if pooler == "pgbouncer" else {}


def create_engine(url: str, *, pool_size: int = 10, pooler: DatabasePooler = "none") -> AsyncEngine:
    # No overflow: churning connections under load costs more than waiting for a pooled one.
    # No pre-ping (a round trip per checkout): a connection broken by a database restart
    # fails its request with a 503 (the sender retries) and is replaced.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=1800,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args=connect_args(pooler),
    )


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)
