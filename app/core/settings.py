"""Service settings, read once from the environment (api-contract.md, "Running it")."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# A development secret, usable only in sandbox mode (api-contract.md: "a fixed development
# value in sandbox mode"). Never accepted outside the sandbox.
SANDBOX_JWT_SECRET = "prap-sandbox-development-secret-not-for-production"
# Likewise the server secret that every other key (cursors, ...) is derived from.
SANDBOX_SECRET_KEY = "prap-sandbox-server-secret-not-for-production"
# Likewise for the keyed NINO digest (domain.md §10) and the sealing of stored idempotent
# answers: fixed so that a sandbox restarted on the same database still finds its data.
SANDBOX_NINO_DIGEST_KEY = "prap-sandbox-nino-digest-key-not-for-production"
SANDBOX_IDEMPOTENCY_KEY = "prap-sandbox-idempotency-key-not-for-production"


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
    secret_key: str | None = Field(
        default=None,
        description="Server secret; the keys for cursors and other signed values derive from it.",
    )
    sandbox: bool = Field(default=False, description="Enable the sandbox endpoints.")
    scheduler: bool = Field(default=True, description="Run the daily jobs in-process.")
    log_level: str = Field(default="INFO")
    db_pool_size: int = Field(
        default=20, ge=1, description="PostgreSQL connections per process, kept open once made."
    )
    db_pre_ping: bool = Field(
        default=False,
        description="Test each pooled connection before use (a round trip per request).",
    )
    idempotency_ttl_hours: int = Field(default=24, ge=1)
    nino_digest_key: str | None = Field(
        default=None,
        description="HMAC key of the NINO digest the open-referral and re-referral rules use.",
    )
    nino_digest_previous_keys: str | None = Field(
        default=None,
        description="Comma-separated keys the digest was made with before the current one; "
        "still matched, so that a rotation keeps finding erased referrals.",
    )
    idempotency_encryption_key: str | None = Field(
        default=None,
        description="Secret from which each stored idempotent answer's own key is derived.",
    )
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

    def derived_key(self, purpose: str) -> bytes | None:
        """A key of its own for each ``purpose``, derived from the server secret (an HMAC of
        the purpose's name), so that no two uses ever share one; None when there is no
        secret (outside sandbox mode, start-up then stops)."""
        secret = self.secret_key or (SANDBOX_SECRET_KEY if self.sandbox else None)
        if secret is None:
            return None
        return hmac.new(secret.encode(), f"prap/{purpose}".encode(), hashlib.sha256).digest()

    @property
    def nino_digest_keys(self) -> tuple[str, ...]:
        """The current digest key first, then the previous ones; empty when there is none."""
        current = self.nino_digest_key or (SANDBOX_NINO_DIGEST_KEY if self.sandbox else None)
        if current is None:
            return ()
        previous = (self.nino_digest_previous_keys or "").split(",")
        return (current, *(k.strip() for k in previous if k.strip()))

    @property
    def idempotency_secret(self) -> str | None:
        if self.idempotency_encryption_key:
            return self.idempotency_encryption_key
        return SANDBOX_IDEMPOTENCY_KEY if self.sandbox else None

    def missing_keys(self) -> list[str]:
        """The environment variables a service outside the sandbox still needs."""
        missing = []
        if self.jwt_verification_key is None:
            missing.append("PRAP_JWT_SECRET or PRAP_JWT_PUBLIC_KEY")
        if not self.nino_digest_keys:
            missing.append("PRAP_NINO_DIGEST_KEY")
        if self.idempotency_secret is None:
            missing.append("PRAP_IDEMPOTENCY_ENCRYPTION_KEY")
        if self.derived_key("check") is None:
            missing.append("PRAP_SECRET_KEY")
        return missing

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
