"""What a worker runs: every job function and cron, gathered from the domains that declare them."""

from __future__ import annotations

from arq.cron import CronJob
from arq.typing import WorkerCoroutine
from arq.worker import Function, func

from app.audit import tasks as audit_tasks
from app.core import idempotency_tasks, jobs
from app.core.jobs import MAX_TRIES
from app.credit_sync import tasks as credit_sync_tasks
from app.expiry import tasks as expiry_tasks
from app.inbox.tasks import drain_webhook_events, handle_webhook_event
from app.notifications import tasks as notification_tasks
from app.orders.tasks import (
    approve_pending_orders,
    award_due_order,
    evaluate_order,
    read_order_payments,
)
from app.shopify import tasks as shopify_tasks

# Domains that declare jobs, crons and sweeper re-drives of their own.
DOMAIN_TASKS = (
    credit_sync_tasks,
    notification_tasks,
    idempotency_tasks,
    audit_tasks,
    shopify_tasks,
    expiry_tasks,
)
SWEEP_TIMEOUT_S = 60


def functions() -> list[Function]:
    tasks: list[WorkerCoroutine] = [
        handle_webhook_event,
        drain_webhook_events,
        evaluate_order,
        award_due_order,
        approve_pending_orders,
        read_order_payments,
    ]
    for module in DOMAIN_TASKS:
        tasks += module.FUNCTIONS
    return [func(t, max_tries=MAX_TRIES, timeout=jobs.JOB_TIMEOUT_S, keep_result=0) for t in tasks]


def domain_crons() -> list[CronJob]:
    return [job for module in DOMAIN_TASKS for job in module.CRON_JOBS]


def in_progress_mark_s() -> float:
    """How long arq marks a job in progress: the longest timeout of a full worker, + 10 s."""
    timeouts = [f.timeout_s or jobs.JOB_TIMEOUT_S for f in functions()]
    timeouts += [c.timeout_s or jobs.JOB_TIMEOUT_S for c in domain_crons()]
    return max([*timeouts, SWEEP_TIMEOUT_S]) + 10
