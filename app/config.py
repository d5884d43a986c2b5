"""Settings, read from the environment (prefix ``CASHBACK_``) and an optional ``.env`` file."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_ADMIN_TOKEN = "change-me"  # noqa: S105 (the value refused outside development)


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
    admin_token: SecretStr = SecretStr(PLACEHOLDER_ADMIN_TOKEN)
    data_dir: Path = Path(".cashback")
    body_limit: int = Field(default=2 * 1024 * 1024, ge=1024, description="Webhook body bytes.")
    cors_origins: list[str] = Field(default_factory=list)
    queue_name: str = "cashback:queue"
    db_pool_size: int = Field(default=10, ge=1)
    worker_max_jobs: int = Field(default=20, ge=1)
    worker_poll_delay: float = Field(default=0.05, ge=0)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if (
            self.env != Environment.development
            and self.admin_token.get_secret_value() == PLACEHOLDER_ADMIN_TOKEN
        ):
            raise ValueError(
                "CASHBACK_ADMIN_TOKEN still holds the placeholder; "
                "set a real secret outside development"
            )
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None or self.redis_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
