"""Claim endpoints (api-contract.md, Claims and payments)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.types import DecoratedCallable

from app.claims import service
from app.claims.schemas import (
    ClaimCreate,
    ClaimHistory,
    ClaimList,
    ClaimOut,
    ClaimReject,
    ClaimValidate,
)
from app.claims.states import ClaimStatus, ClaimType
from app.contracts.schemas import ProviderId, WithoutNul
from app.core.auth import Principal, Role, Scope, require
from app.core.deps import IfMatch, IfNoneMatch, RequestClock, Session
from app.core.etags import NOT_MODIFIED, etag, if_none_match_matches, not_modified
from app.core.pagination import CursorParam, Limit
from app.core.problems import (
    ClaimNotEligible,
    DuplicateClaim,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    SegregationOfDuties,
    problem_responses,
)

router = APIRouter(prefix="/v1/claims", tags=["claims"])

Claimant = Annotated[Principal, Depends(require(Role.provider, scopes=(Scope.claims,)))]
Reader = Annotated[
    Principal,
    Depends(require(Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]
Post = Annotated[Principal, Depends(require(Role.post))]
ClaimId = Annotated[str, Path(alias="id", max_length=40), WithoutNul]


def _decision(path: str, operation_id: str) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """validateClaim and rejectClaim: post's decision on a submitted claim (domain.md §8),
    which the claim state table may refuse."""
    return router.post(
        path,
        operation_id=operation_id,
        response_model=ClaimOut,
        responses=problem_responses(NotFound, PreconditionFailed, InvalidTransition),
    )


def _tagged(response: Response, claim: ClaimOut) -> ClaimOut:
    """The claim, with its version as the ``ETag`` (for ``If-Match`` on the next change)."""
    response.headers["ETag"] = etag(claim.version)
    return claim


@router.post(
    "",
    operation_id="createClaim",
    status_code=201,
    response_model=ClaimOut,
    responses=problem_responses(NotFound, SegregationOfDuties, DuplicateClaim, ClaimNotEligible),
)
async def create_claim(
    body: ClaimCreate,
    principal: Claimant,
    session: Session,
    clock: RequestClock,
    response: Response,
) -> ClaimOut:
    """Claim an attachment, job outcome or sustainment payment for a referral, as the
    programme funds it.
    Whoever recorded the referral's start or end may not claim for it (GEN 122)."""
    claim = await service.create_claim(session, clock, principal, body)
    response.headers["Location"] = f"/v1/claims/{claim.id}"
    return _tagged(response, claim)


@router.get("", operation_id="listClaims", response_model=ClaimList)
async def list_claims(
    principal: Reader,
    session: Session,
    status: Annotated[ClaimStatus | None, Query()] = None,
    claim_type: Annotated[ClaimType | None, Query()] = None,
    referral_id: Annotated[str | None, Query(max_length=40), WithoutNul] = None,
    provider_id: Annotated[ProviderId | None, Query()] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> ClaimList:
    """Claims the caller may see (a provider: its own), oldest first, a page at a time."""
    items, next_cursor = await service.list_claims(
        session,
        principal,
        status=status,
        claim_type=claim_type,
        referral_id=referral_id,
        provider_id=provider_id,
        cursor=cursor,
        limit=limit,
    )
    return ClaimList(items=items, next_cursor=next_cursor)


@router.get(
    "/{id}",
    operation_id="getClaim",
    response_model=ClaimOut,
    responses=NOT_MODIFIED | problem_responses(NotFound),
)
async def get_claim(
    claim_id: ClaimId,
    principal: Reader,
    session: Session,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> ClaimOut | Response:
    """The claim, with its `ETag`."""
    claim = ClaimOut.model_validate(await service.get_readable_claim(session, principal, claim_id))
    if if_none_match is not None and if_none_match_matches(if_none_match, claim.version):
        return not_modified(claim.version)
    return _tagged(response, claim)


@_decision("/{id}/validate", "validateClaim")
async def validate_claim(
    claim_id: ClaimId,
    principal: Post,
    session: Session,
    clock: RequestClock,
    response: Response,
    if_match: IfMatch = None,
    body: ClaimValidate | None = None,
) -> ClaimOut:
    """POST checks the claim and its evidence, and validates it for payment."""
    return _tagged(
        response, await service.validate_claim(session, clock, principal, claim_id, if_match)
    )


@_decision("/{id}/reject", "rejectClaim")
async def reject_claim(
    claim_id: ClaimId,
    body: ClaimReject,
    principal: Post,
    session: Session,
    clock: RequestClock,
    response: Response,
    if_match: IfMatch = None,
) -> ClaimOut:
    """Reject a claim, with the reason the provider will see."""
    claim = await service.reject_claim(session, clock, principal, claim_id, body.reason, if_match)
    return _tagged(response, claim)


@router.get(
    "/{id}/history",
    operation_id="getClaimHistory",
    response_model=ClaimHistory,
    responses=problem_responses(NotFound),
)
async def get_claim_history(claim_id: ClaimId, principal: Reader, session: Session) -> ClaimHistory:
    """Every change of the claim, oldest first."""
    return ClaimHistory(items=await service.claim_history(session, principal, claim_id))
