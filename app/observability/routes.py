"""`GET /metrics`: the API process's Prometheus metrics, for the operator token only."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from app.credit_sync.models import CreditSync, SyncStatus
from app.deps import AdminDep, ResourcesDep
from app.observability.metrics import ApiMetrics

router = APIRouter()


@router.get("/metrics", include_in_schema=False, dependencies=[AdminDep])
async def metrics(request: Request, res: ResourcesDep) -> Response:
    api_metrics: ApiMetrics = request.app.state.prometheus
    # Queue gauges are read at scrape time: Redis holds the truth, not this process.
    await api_metrics.read_queue(res.broker.redis, res.settings.queue_name)
    async with res.sessionmaker() as session:  # failed syncs stay failed: the database knows
        failed = await session.scalar(
            select(func.count()).where(CreditSync.status == SyncStatus.failed)
        )
    api_metrics.set_sync_failures(int(failed or 0))
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
