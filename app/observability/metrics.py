"""Prometheus metrics. Each process (and each app built in tests) has its own registry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from arq.connections import ArqRedis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.shopify.deprecations import SHOPIFY_DEPRECATED_CALLS
from app.shopify.topics import TOPICS

logger = logging.getLogger(__name__)

# Topic labels come from a header anyone can send: only known topics become label values.
KNOWN_TOPICS = frozenset(TOPICS)
OTHER_TOPIC = "other"
QUEUE_READ_TIMEOUT_S = 1.0


def topic_label(topic: str) -> str:
    return topic if topic in KNOWN_TOPICS else OTHER_TOPIC


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cashback_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cashback_http_request_duration_seconds",
            "HTTP request latency, by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "cashback_webhooks",
            "Shopify webhooks received, by topic and result "
            "(accepted, duplicate, malformed, rejected).",
            ["topic", "result"],
            registry=self.registry,
        )
        self.delivery_lag = Histogram(
            "cashback_webhook_delivery_lag_seconds",
            "From Shopify triggering a delivery (X-Shopify-Triggered-At) to its arrival here.",
            ["topic"],
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "cashback_queue_depth",
            "Jobs waiting in the queue (including deferred retries).",
            ["queue"],
            registry=self.registry,
        )
        self.queue_oldest_age = Gauge(
            "cashback_queue_oldest_job_age_seconds",
            "How long the job due first has been due (0 when none is overdue).",
            ["queue"],
            registry=self.registry,
        )
        self.registry.register(SHOPIFY_DEPRECATED_CALLS)

        self.sync_failed = Gauge(
            "cashback_store_credit_sync_failed",
            "Ledger entries whose push to the platform failed for good (all shops).",
            registry=self.registry,
        )

    def set_sync_failures(self, count: int) -> None:
        self.sync_failed.set(count)

    def record_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def record_webhook(self, topic: str, result: str) -> None:
        self.webhooks.labels(topic_label(topic), result).inc()

    def record_delivery_lag(self, topic: str, seconds: float) -> None:
        self.delivery_lag.labels(topic_label(topic)).observe(max(seconds, 0.0))

    async def read_queue(self, redis: ArqRedis, queue_name: str) -> None:
        """Set the queue gauges from Redis; on failure the gauges keep their last values."""
        try:
            depth, oldest = await asyncio.wait_for(
                _queue_state(redis, queue_name), QUEUE_READ_TIMEOUT_S
            )
        except Exception as exc:
            logger.warning("metrics: could not read queue %s: %r", queue_name, exc)
            return
        self.queue_depth.labels(queue_name).set(depth)
        age = 0.0 if oldest is None else max(0.0, time.time() - oldest / 1000)
        self.queue_oldest_age.labels(queue_name).set(age)


async def _queue_state(redis: ArqRedis, queue_name: str) -> tuple[int, float | None]:
    # arq's queue is a sorted set scored by the time (ms) each job is due.
    depth = int(await redis.zcard(queue_name))
    first = await redis.zrange(queue_name, 0, 0, withscores=True)
    return depth, float(first[0][1]) if first else None  # enqueue time, epoch seconds


class WorkerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter(
            "cashback_jobs",
            "arq job tries, by function and outcome (ok, failed, retried, cancelled).",
            ["function", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "cashback_job_duration_seconds",
            "arq job try duration, by function.",
            ["function"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.redrives = Counter(
            "cashback_sweeper_redrives",
            "Work the sweeper rang for again, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.registry.register(SHOPIFY_DEPRECATED_CALLS)

    def record_job(self, function: str, outcome: str, seconds: float) -> None:
        self.jobs.labels(function, outcome).inc()
        self.duration.labels(function).observe(seconds)

    def record_sweep(self, counts: Mapping[str, int]) -> None:
        for kind, count in counts.items():
            self.redrives.labels(kind).inc(count)
