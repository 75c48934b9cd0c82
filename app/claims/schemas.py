from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.claims.states import ClaimEventType, ClaimStatus, ClaimType, OutcomeBasis
from app.contracts.schemas import WithoutNul
from app.programmes.schemas import ProgrammeCode
from app.referrals.states import ActorRole

Reference = Annotated[str, StringConstraints(min_length=1, max_length=100), WithoutNul]


class ClaimCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    referral_id: Annotated[str, StringConstraints(min_length=1, max_length=40), WithoutNul]
    claim_type: ClaimType
    job_start_date: date | None = None
    hours_per_week: int | None = Field(default=None, ge=0, le=168)
    basis: OutcomeBasis | None = None
    weeks_in_work_last_30: int | None = Field(default=None, ge=0, le=30)
    evidence_reference: Reference | None = None


class ClaimReject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), WithoutNul]


class ClaimValidate(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClaimOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    referral_id: str
    contract_id: str
    provider_id: str
    programme: ProgrammeCode
    claim_type: ClaimType
    status: ClaimStatus
    amount_pence: int
    job_start_date: date | None
    hours_per_week: int | None
    basis: OutcomeBasis | None
    weeks_in_work_last_30: int | None
    evidence_reference: str | None
    rejection_reason: str | None
    payment_run_id: str | None
    submitted_at: datetime
    validated_at: datetime | None
    rejected_at: datetime | None
    voided_at: datetime | None
    paid_at: datetime | None
    updated_at: datetime
    version: int


class ClaimList(BaseModel):
    items: list[ClaimOut]
    next_cursor: str | None


class ClaimActor(BaseModel):
    sub: str
    role: ActorRole
    provider_id: str | None


class ClaimEventOut(BaseModel):
    type: ClaimEventType
    status: ClaimStatus
    occurred_at: datetime
    actor: ClaimActor
    reason: str | None = None
    payment_run_id: str | None = None


class ClaimHistory(BaseModel):
    items: list[ClaimEventOut]
