"""Settings, read from the environment (prefix ``CASHBACK_``) and an optional ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Development defaults; both are refused outside development.
PLACEHOLDER_ADMIN_TOKEN = "change-me"  # noqa: S105
PLACEHOLDER_SECRET_KEY = "dev-secret-key-change-me"  # noqa: S105


# "pgbouncer": the database URLs point at a PgBouncer in transaction pooling mode.
DatabasePooler = Literal["none", "pgbouncer"]


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASHBACK_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://user:pass@host/db; unset means the embedded server.",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db; unset means the embedded server."
    )
    database_read_url: str | None = Field(
        default=None,
        description="A streaming replica for the reads that tolerate lag (order lists and "
        "counts, dashboard figures, audit events and exports, ledger lists); unset: the "
        "primary serves them. Writes, and reads that must see them, stay on the primary.",
    )
    database_pooler: DatabasePooler = Field(
        default="none",
        description="`pgbouncer` when the database URLs point at a PgBouncer in transaction "
        "pooling mode: no prepared statement is kept past its transaction.",
    )
    admin_token: SecretStr = SecretStr(PLACEHOLDER_ADMIN_TOKEN)
    secret_key: SecretStr = Field(
        default=SecretStr(PLACEHOLDER_SECRET_KEY),
        description="Encrypts secrets at rest (platform access tokens).",
    )
    http_timeout_s: float = Field(default=10.0, gt=0, description="Calls to other systems.")
    outbox_retention_days: int = Field(
        default=30, ge=7, description="How long sent and given-up notices and alerts are kept."
    )
    idempotency_retention_hours: int = Field(
        default=48, ge=24, description="How long an Idempotency-Key and its answer are kept."
    )
    data_dir: Path = Path(".cashback")
    body_limit: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Request body bytes, any route."
    )
    cors_origins: list[str] = Field(default_factory=list)
    queue_name: str = "cashback:queue"
    db_pool_size: int = Field(default=10, ge=1)
    worker_max_jobs: int = Field(default=20, ge=1)
    worker_poll_delay: float = Field(default=0.05, ge=0)  # seconds
    drain_linger_s: float = Field(
        default=0.05,
        ge=0,
        description=(
            "Seconds a drain loop waits after a batch that was not full before it claims the "
            "next: under a steady trickle the batches grow (each costs a dozen statements "
            "whatever its size) for this much more latency."
        ),
    )
    intake_linger_s: float = Field(
        default=0.002,
        ge=0,
        le=0.1,
        description=(
            "Seconds the webhook intake waits before a write that follows a small one, so the "
            "deliveries arriving meanwhile share its statement and commit: at a few hundred "
            "orders a second each write otherwise carries one or two. Under a flood the writes "
            "are large and nobody waits. 0 writes at once."
        ),
    )
    create_settle_s: float = Field(
        default=1.5,
        ge=0,
        description=(
            "Seconds an `orders/create` waits before it is handled, so the order's "
            "`orders/paid` (which follows within a second on a real store) meets it in one "
            "batch or has been handled already: the order is then evaluated once, not twice. "
            "The API applies it as it stores the delivery (its ready_at). Nothing else waits; "
            "0 handles creates at once."
        ),
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "text", "json"] = Field(
        default="auto", description="auto: JSON lines in production, text elsewhere."
    )
    worker_metrics_port: int = Field(
        default=9102, ge=0, le=65535, description="The worker's /metrics port; 0 disables it."
    )
    worker_metrics_host: str = "127.0.0.1"
    worker_health_interval: int = Field(
        default=30, ge=1, description="Seconds between the worker's health records in Redis."
    )
    auth_failure_limit: int = Field(
        default=20, ge=1, description="Failed authentications a client may make per window."
    )
    auth_failure_window_s: int = Field(
        default=60, ge=1, description="Seconds of the failed-authentication window."
    )
    trust_forwarded_for: bool = Field(
        default=False,
        description="Behind a trusted proxy: take the client address from X-Forwarded-For.",
    )
    # The Shopify app (app/shopify). All unset: no app; shops are made by hand.
    shopify_client_id: str | None = None
    shopify_client_secret: SecretStr | None = Field(
        default=None, description="Signs webhooks, session tokens and App Proxy requests."
    )
    shopify_previous_client_secret: SecretStr | None = Field(
        default=None, description="Still accepted while the client secret is rotated."
    )
    public_url: str | None = Field(
        default=None,
        description="The service's public origin, e.g. https://cashback.example.com: OAuth "
        "redirect and webhook URLs, and links in alerts (a path alone when unset).",
    )
    shopify_admin_url: str = Field(
        default="https://{shop}",
        description="A shop's Admin origin; {shop} is the myshopify.com name.",
    )
    shopify_api_version: str = Field(
        default="2026-10", pattern=r"^(\d{4}-\d{2}|unstable)$", description="Admin API version."
    )

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.env != Environment.development:
            for name, value, placeholder in (
                ("CASHBACK_ADMIN_TOKEN", self.admin_token, PLACEHOLDER_ADMIN_TOKEN),
                ("CASHBACK_SECRET_KEY", self.secret_key, PLACEHOLDER_SECRET_KEY),
            ):
                if value.get_secret_value() == placeholder:
                    raise ValueError(
                        f"{name} still holds the placeholder; set a real secret outside development"
                    )
        return self

    @model_validator(mode="after")
    def _refuse_a_replica_without_a_primary(self) -> Settings:
        if self.database_read_url and not self.database_url:
            raise ValueError("CASHBACK_DATABASE_READ_URL needs CASHBACK_DATABASE_URL (its primary)")
        return self

    @model_validator(mode="after")
    def _refuse_half_an_app(self) -> Settings:
        if "{shop}" not in self.shopify_admin_url:
            raise ValueError("CASHBACK_SHOPIFY_ADMIN_URL must contain {shop}")
        if self.public_url is not None:
            self.public_url = self.public_url.rstrip("/")
            if not self.public_url.startswith(("https://", "http://")):
                raise ValueError("CASHBACK_PUBLIC_URL must be an http(s) origin")
        if self.env != Environment.production:
            return self
        parts = {
            "CASHBACK_SHOPIFY_CLIENT_ID": self.shopify_client_id,
            "CASHBACK_SHOPIFY_CLIENT_SECRET": self.shopify_client_secret,
            "CASHBACK_PUBLIC_URL": self.public_url,
        }
        missing = sorted(name for name, value in parts.items() if not value)
        anything_set = len(missing) < len(parts) or self.shopify_previous_client_secret is not None
        if anything_set and missing:
            raise ValueError(
                f"the Shopify app is half configured: set {', '.join(missing)} too "
                "(or none of the CASHBACK_SHOPIFY_* and CASHBACK_PUBLIC_URL settings)"
            )
        if self.public_url is not None and not self.public_url.startswith("https://"):
            raise ValueError("CASHBACK_PUBLIC_URL must be https:// in production")
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
