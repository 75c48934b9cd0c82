"""Every ORM model, imported in one place for Alembic's autogenerate and ``alembic check``."""

from app.audit.models import ReferralRead
from app.claims.models import Claim, ClaimEvent
from app.contracts.models import Contract
from app.core.database import Base
from app.idempotency.models import IdempotencyRecord, IdempotencyReferral
from app.jobs.models import JobRun
from app.payments.models import PaymentLine, PaymentRun
from app.programmes.models import Programme
from app.referrals.models import Referral, ReferralEvent
from app.sandbox.models import SandboxClock
from app.webhooks.models import WebhookDelivery, WebhookSubscription

__all__ = [
    "Base",
    "Claim",
    "ClaimEvent",
    "Contract",
    "IdempotencyRecord",
    "IdempotencyReferral",
    "JobRun",
    "PaymentLine",
    "PaymentRun",
    "Programme",
    "Referral",
    "ReferralEvent",
    "ReferralRead",
    "SandboxClock",
    "WebhookDelivery",
    "WebhookSubscription",
]
