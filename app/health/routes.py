from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import text

from app.core.errors import ServiceUnavailable, problem_responses
from app.deps import ResourcesDep
from app.migrate import head_revision

router = APIRouter(tags=["Health"])

CHECK_TIMEOUT_S = 2.0


class SchemaBehind(Exception):
    """The database answers but its schema is not at this code's migration head."""


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    redis: str
    migrations: str = Field(description="`ok` when the schema is at this code's newest migration.")


@router.get(
    "/healthz",
    operation_id="getHealth",
    summary="Liveness: the process answers",
    description="No dependency is checked: a 200 means the process serves requests.",
)
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database (schema at head) and Redis answer",
    description=(
        "503 names what is not ready (`database`, `redis`, or a schema behind this code's "
        "newest migration); load balancers stop routing here until it answers 200."
    ),
    responses=problem_responses(ServiceUnavailable),
)
async def readyz(res: ResourcesDep) -> Readiness:
    async def database() -> None:
        async with res.engine.connect() as conn:
            version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
        if version != head_revision():
            raise SchemaBehind(f"schema at {version}, code expects {head_revision()}")

    failures = []
    for name, check in (("database", database), ("redis", res.broker.redis.ping)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except Exception as exc:
            detail = str(exc) if isinstance(exc, SchemaBehind) else type(exc).__name__
            failures.append(f"{name}: {detail}")
    if failures:
        raise ServiceUnavailable("; ".join(failures))
    return Readiness(status="ok", database="ok", redis="ok", migrations="ok")
