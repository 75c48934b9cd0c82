"""Service settings, read once from the environment (api-contract.md, "Running it")."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development secret, usable only in sandbox mode (api-contract.md: "a fixed development
# value in sandbox mode"). Never accepted outside the sandbox.
SANDBOX_JWT_SECRET = "prap-sandbox-development-secret-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PRAP_", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./prap.db",
        description="SQLAlchemy URL with an async driver.",
    )
    jwt_secret: str | None = Field(default=None, description="HS256 secret.")
    jwt_public_key: str | None = Field(
        default=None, description="PEM public key; when set, tokens are RS256."
    )
    sandbox: bool = Field(default=False, description="Enable the sandbox endpoints.")
    scheduler: bool = Field(default=True, description="Run the daily jobs in-process.")
    log_level: str = Field(default="INFO")
    db_pool_size: int = Field(default=10, ge=1)
    db_pre_ping: bool = Field(
        default=False,
        description="Test each pooled connection before use (a round trip per request).",
    )
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    webhooks: bool = Field(default=True, description="Run the webhook delivery worker in-process.")
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="A receiver must answer 2xx within this (contract: 10 s)."
    )
    webhook_concurrency: int = Field(
        default=16, ge=1, description="Deliveries one worker sends at once."
    )

    @property
    def jwt_algorithm(self) -> str:
        return "RS256" if self.jwt_public_key else "HS256"

    @property
    def jwt_verification_key(self) -> str | None:
        """The key tokens are verified with, or None when the service has no key at all."""
        if self.jwt_public_key:
            return self.jwt_public_key
        if self.jwt_secret:
            return self.jwt_secret
        if self.sandbox:
            return SANDBOX_JWT_SECRET
        return None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
