"""Every ORM model, imported in one place for Alembic's autogenerate and ``alembic check``."""

from app.contracts.models import Contract
from app.core.database import Base
from app.idempotency.models import IdempotencyRecord
from app.jobs.models import JobRun
from app.programmes.models import Programme
from app.referrals.models import Referral, ReferralEvent
from app.sandbox.models import SandboxClock

__all__ = [
    "Base",
    "Contract",
    "IdempotencyRecord",
    "JobRun",
    "Programme",
    "Referral",
    "ReferralEvent",
    "SandboxClock",
]
