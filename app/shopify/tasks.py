"""Jobs of the Shopify app; the worker collects FUNCTIONS (max_tries and timeout from
workers.worker)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from arq import Retry
from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.broker import Job
from app.core.jobs import MAX_TRIES, backoff_seconds, resources
from app.credit_sync.service import NoAdminAccess, admin_api
from app.shopify import subscriptions, tokens
from app.shopify.admin import AdminApiError
from app.shopify.app_config import app_of
from app.shops.models import Shop

logger = logging.getLogger(__name__)


async def register_webhook_subscriptions(ctx: dict[str, Any], shop_id: int) -> list[str]:
    """After an install: create the webhook subscriptions the shop lacks (retried with
    backoff; what is still missing after the last try, reconciliation reports)."""
    res = resources(ctx)
    app = app_of(res.settings)
    if app is None:
        return []
    job_try: int = ctx.get("job_try", 1)
    try:
        await tokens.refresh(res, shop_id)  # only if due
        async with res.sessionmaker() as session:
            shop = await session.get_one(Shop, shop_id)
        if shop.uninstalled_at is not None:
            return []
        created = await subscriptions.ensure_subscriptions(
            res.http, admin_api(shop, res.secrets), app.webhook_uri
        )
    except (AdminApiError, NoAdminAccess, tokens.RefreshUnavailable) as exc:
        logger.warning("webhook subscriptions of shop %s, try %d: %s", shop_id, job_try, exc)
        if job_try >= MAX_TRIES:
            return []
        raise Retry(defer=backoff_seconds(job_try)) from exc
    if created:
        logger.info("shop %s: subscribed to %s", shop.domain, ", ".join(created))
    return created


FUNCTIONS: list[WorkerCoroutine] = [register_webhook_subscriptions]
CRON_JOBS: list[CronJob] = []


async def stale_jobs(session: AsyncSession, cutoff: datetime) -> list[Job]:
    return []  # nothing stored waits on these jobs
