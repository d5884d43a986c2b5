from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from app.deps import ResourcesDep
from app.kit.errors import ServiceUnavailable, problem_responses

router = APIRouter(tags=["Health"])

CHECK_TIMEOUT_S = 2.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    redis: str


@router.get("/healthz", operation_id="getHealth", summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="getReadiness",
    summary="Readiness: the database and Redis answer",
    responses=problem_responses(ServiceUnavailable),
)
async def readyz(res: ResourcesDep) -> Readiness:
    async def database() -> None:
        async with res.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    failures = []
    for name, check in (("database", database), ("redis", res.doorbell.redis.ping)):
        try:
            await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}")
    if failures:
        raise ServiceUnavailable("; ".join(failures))
    return Readiness(status="ok", database="ok", redis="ok")
