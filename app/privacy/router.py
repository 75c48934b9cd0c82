"""Erasure and subject access (api-contract.md, Referrals and Personal data)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from app.contracts.schemas import WithoutNul
from app.core.auth import Principal, Role, require
from app.core.deps import IfMatch, RequestClock, Session
from app.core.etags import etag
from app.core.problems import InvalidTransition, NotFound, PreconditionFailed, problem_responses
from app.privacy import service
from app.privacy.schemas import ErasureBody, SubjectAccessBody, SubjectAccessOut
from app.referrals.digests import Digests
from app.referrals.schemas import ReferralOut

router = APIRouter(prefix="/v1")

Support = Annotated[Principal, Depends(require(Role.post))]
ReferralId = Annotated[
    str, Path(alias="id", max_length=40, description="The id the service assigned."), WithoutNul
]


@router.post(
    "/referrals/{id}/erasure",
    operation_id="eraseReferral",
    tags=["referrals"],
    response_model=ReferralOut,
    responses=problem_responses(NotFound, PreconditionFailed, InvalidTransition),
)
async def erase_referral(
    referral_id: ReferralId,
    body: ErasureBody,
    principal: Support,
    session: Session,
    clock: RequestClock,
    response: Response,
    if_match: IfMatch = None,
) -> ReferralOut:
    """Erase the participant's personal data from a closed referral, its history and every
    other place the service keeps it (DWP generic provider guidance 136-137). Ids, dates,
    status, codes, claims and payments stay; the NINO lives on only as a keyed digest, for the
    open-referral and re-referral rules."""
    referral = await service.erase_referral(session, clock, principal, referral_id, body, if_match)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.post(
    "/subject-access",
    operation_id="exportSubjectAccess",
    tags=["personal data"],
    response_model=SubjectAccessOut,
)
async def export_subject_access(
    body: SubjectAccessBody,
    principal: Support,
    session: Session,
    clock: RequestClock,
    digests: Digests,
) -> SubjectAccessOut:
    """Everything the service holds about one NINO: referrals with their histories, claims,
    and who was shown them. A POST, so that the NINO never appears in a URL."""
    return await service.subject_access(session, clock, principal, digests, body.nino)
