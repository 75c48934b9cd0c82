from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, StringConstraints

from app.audit.schemas import ReadOut
from app.claims.schemas import ClaimOut
from app.contracts.schemas import WithoutNul
from app.referrals.schemas import EventOut, Nino, ReferralOut, Strict


class ErasureBody(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), WithoutNul]


class SubjectAccessBody(Strict):
    nino: Nino


class SubjectAccessReferral(ReferralOut):
    history: list[EventOut]


class SubjectAccessOut(BaseModel):
    referrals: list[SubjectAccessReferral]
    claims: list[ClaimOut]
    reads: list[ReadOut]
