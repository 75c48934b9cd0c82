"""Referral endpoints (api-contract.md, Referrals). Each parses, authorises and calls one
service function. The action endpoints are made from the transition table, so each admits
exactly the role the table names."""

# No `from __future__ import annotations`: the action endpoints are built in a loop and
# FastAPI must see their body types as real objects, not strings.

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.schemas import ProviderId, WithoutNul
from app.core.auth import Principal, Role, Scope, require
from app.core.clock import Clock
from app.core.deps import IfMatch, IfNoneMatch, RequestClock, Session
from app.core.etags import NOT_MODIFIED, etag, if_none_match_matches, not_modified
from app.core.pagination import CursorParam, Limit
from app.core.problems import (
    AcknowledgementWindowClosed,
    DateOutOfRange,
    EndCodeAutomatedOnly,
    ExclusiveProgramme,
    InvalidTransition,
    MappaContactDetails,
    NoContract,
    NotFound,
    OpenReferralExists,
    PolicyReferenceRequired,
    PreconditionFailed,
    ProblemError,
    ReReferralNotAllowed,
    SegregationOfDuties,
    problem_responses,
)
from app.programmes.schemas import ProgrammeCode
from app.referrals import service
from app.referrals.digests import Digests
from app.referrals.schemas import (
    BackOutBody,
    CancelBody,
    DidNotAttendBody,
    DidNotStartBody,
    EmptyBody,
    EndBody,
    EventHistory,
    ParticipantPatch,
    ReferralCreate,
    ReferralList,
    ReferralOut,
    ReferralSearchResult,
    RejectBody,
    SearchBody,
    StartBody,
)
from app.referrals.states import ActorRole, ReferralAction, ReferralStatus
from app.referrals.transitions import TRANSITIONS

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

Creator = Annotated[Principal, Depends(require(Role.jcp))]
Reader = Annotated[
    Principal,
    Depends(require(Role.jcp, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]
ReferralId = Annotated[
    str, Path(alias="id", max_length=40, description="The id the service assigned."), WithoutNul
]


@router.post(
    "",
    operation_id="createReferral",
    status_code=201,
    response_model=ReferralOut,
    responses=problem_responses(
        MappaContactDetails,
        NoContract,
        OpenReferralExists,
        ReReferralNotAllowed,
        ExclusiveProgramme,
    ),
)
async def create_referral(
    body: ReferralCreate,
    principal: Creator,
    session: Session,
    clock: RequestClock,
    response: Response,
    digests: Digests,
) -> ReferralOut:
    """Refer a participant to a provider holding a contract for the programme. The referral
    date is today; a participant with an open referral on the programme (Job Finding Support
    guidance 5.19), or who started on it before (3.42, 5.16), cannot be referred again."""
    referral = await service.create_referral(session, clock, principal, body, digests)
    response.headers["Location"] = f"/v1/referrals/{referral.id}"
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.get("", operation_id="listReferrals", response_model=ReferralList)
async def list_referrals(
    principal: Reader,
    session: Session,
    clock: RequestClock,
    status: Annotated[ReferralStatus | None, Query()] = None,
    programme: Annotated[ProgrammeCode | None, Query()] = None,
    provider_id: Annotated[ProviderId | None, Query()] = None,
    referred_from: Annotated[date | None, Query(description="Referral date on or after.")] = None,
    referred_to: Annotated[date | None, Query(description="Referral date on or before.")] = None,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> ReferralList:
    """Referrals the caller may see (a provider: its own), oldest first, a page at a time."""
    items, next_cursor = await service.list_referrals(
        session,
        clock,
        principal,
        status=status,
        programme=programme,
        provider_id=provider_id,
        referred_from=referred_from,
        referred_to=referred_to,
        cursor=cursor,
        limit=limit,
    )
    return ReferralList(items=items, next_cursor=next_cursor)


@router.post("/search", operation_id="searchReferrals", response_model=ReferralSearchResult)
async def search_referrals(
    body: SearchBody, principal: Reader, session: Session, clock: RequestClock, digests: Digests
) -> ReferralSearchResult:
    """Find referrals by NINO. A POST, so that the NINO never appears in a URL."""
    return ReferralSearchResult(
        items=await service.search_referrals(session, clock, principal, digests, body.nino)
    )


@router.get(
    "/{id}",
    operation_id="getReferral",
    response_model=ReferralOut,
    responses=NOT_MODIFIED | problem_responses(NotFound),
)
async def get_referral(
    referral_id: ReferralId,
    principal: Reader,
    session: Session,
    clock: RequestClock,
    response: Response,
    if_none_match: IfNoneMatch = None,
) -> ReferralOut | Response:
    """The referral, with its `ETag`; `allowed_actions` says what the caller may do next."""
    referral = await service.get_referral(session, clock, principal, referral_id)
    if if_none_match is not None and if_none_match_matches(if_none_match, referral.version):
        return not_modified(referral.version)
    response.headers["ETag"] = etag(referral.version)
    return referral


@router.get(
    "/{id}/history",
    operation_id="getReferralHistory",
    response_model=EventHistory,
    responses=problem_responses(NotFound),
)
async def get_referral_history(
    referral_id: ReferralId, principal: Reader, session: Session, clock: RequestClock
) -> EventHistory:
    """Every change of the referral, oldest first (append-only)."""
    return EventHistory(
        items=await service.referral_history(session, clock, principal, referral_id)
    )


@router.patch(
    "/{id}/participant",
    operation_id="updateParticipant",
    response_model=ReferralOut,
    responses=problem_responses(
        NotFound, PreconditionFailed, InvalidTransition, MappaContactDetails
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media_type: {"schema": {"$ref": "#/components/schemas/ParticipantPatch"}}
                for media_type in ("application/merge-patch+json", "application/json")
            },
        }
    },
)
async def update_participant(
    referral_id: ReferralId,
    principal: Creator,
    session: Session,
    clock: RequestClock,
    response: Response,
    body: Annotated[ParticipantPatch, Body()],
    if_match: IfMatch = None,
) -> ReferralOut:
    """A change of circumstances (Job Finding Support guidance 4.23-4.24): a JSON merge patch (RFC
    7396) of the participant, as `application/merge-patch+json` or `application/json`. The
    NINO cannot change; a closed referral cannot be changed; a MAPPA referral takes no
    contact details. Adds one `participant_changed` event naming the changed fields."""
    referral = await service.update_participant(
        session, clock, principal, referral_id, body, if_match
    )
    response.headers["ETag"] = etag(referral.version)
    return referral


# --- actions, from the transition table ----------------------------------------------------

_ACTION_ROUTES: list[tuple[ReferralAction, str, type[BaseModel] | None, str]] = [
    (ReferralAction.acknowledge, "acknowledgeReferral", EmptyBody, "Acknowledge (JFS 3.07)."),
    (ReferralAction.accept, "acceptReferral", EmptyBody, "Accept; accepting also acknowledges."),
    (ReferralAction.reject, "rejectReferral", RejectBody, "Reject (JFS 3.35-3.36)."),
    (ReferralAction.cancel, "cancelReferral", CancelBody, "Cancel (JFS annex 2, SES 3.14)."),
    (
        ReferralAction.did_not_attend,
        "recordDidNotAttend",
        DidNotAttendBody,
        "The participant failed to attend the initial meeting (JFS 3.33-3.34).",
    ),
    (
        ReferralAction.did_not_start,
        "recordDidNotStart",
        DidNotStartBody,
        "Attended but did not start, or cancelled before the meeting (JFS 3.31-3.32).",
    ),
    (ReferralAction.start, "startReferral", StartBody, "Record the start (JFS 3.27)."),
    (ReferralAction.end, "endReferral", EndBody, "Record the end (JFS annex 2)."),
    (
        ReferralAction.back_out,
        "backOutReferral",
        BackOutBody,
        "POST backs out a recorded start (SES 3.15, JFS 3.37-3.38).",
    ),
]

# Each action's operation id, for the read audit of callers other than these routes (the
# console's forms), which record the same operation as the API would.
ACTION_OPERATION_IDS = {action: operation_id for action, operation_id, _, _ in _ACTION_ROUTES}

_ACTION_PROBLEMS: dict[ReferralAction, tuple[type[ProblemError], ...]] = {
    ReferralAction.acknowledge: (AcknowledgementWindowClosed,),
    ReferralAction.accept: (AcknowledgementWindowClosed,),
    ReferralAction.did_not_start: (DateOutOfRange,),
    ReferralAction.start: (AcknowledgementWindowClosed, DateOutOfRange, SegregationOfDuties),
    ReferralAction.end: (
        EndCodeAutomatedOnly,
        PolicyReferenceRequired,
        DateOutOfRange,
        SegregationOfDuties,
    ),
}


def _actor_dependency(action: ReferralAction) -> Any:
    transition = TRANSITIONS[action]
    if transition.actor is ActorRole.post:
        return Depends(require(Role.post))
    return Depends(require(Role.provider, scopes=(Scope.referrals,)))


def _register(action: ReferralAction, operation_id: str, body_model: Any, summary: str) -> None:
    transition = TRANSITIONS[action]
    sources = ", ".join(f"`{s}`" for s in sorted(transition.sources))
    description = (
        f"{summary}\n\nBy `{transition.actor}`; from {sources} to `{transition.target}` "
        f"({transition.reference})."
    )
    Actor = Annotated[Principal, _actor_dependency(action)]

    async def run(
        referral_id: str,
        session: AsyncSession,
        clock: Clock,
        response: Response,
        principal: Principal,
        if_match: str | None,
        body: Any,
    ) -> ReferralOut:
        referral = await service.perform(
            session, clock, principal, referral_id, action, body, if_match, operation_id
        )
        response.headers["ETag"] = etag(referral.version)
        return referral

    if body_model is EmptyBody:

        async def endpoint(
            referral_id: ReferralId,
            session: Session,
            clock: RequestClock,
            response: Response,
            principal: Actor,
            if_match: IfMatch = None,
            body: Annotated[EmptyBody | None, Body()] = None,
        ) -> ReferralOut:
            return await run(referral_id, session, clock, response, principal, if_match, body)

    else:

        async def endpoint(  # type: ignore[misc]
            referral_id: ReferralId,
            session: Session,
            clock: RequestClock,
            response: Response,
            principal: Actor,
            body: Annotated[body_model, Body()],
            if_match: IfMatch = None,
        ) -> ReferralOut:
            return await run(referral_id, session, clock, response, principal, if_match, body)

    endpoint.__name__ = operation_id
    router.add_api_route(
        f"/{{id}}/{action.value}",
        endpoint,
        methods=["POST"],
        operation_id=operation_id,
        response_model=ReferralOut,
        summary=summary,
        description=description,
        responses=problem_responses(
            NotFound, PreconditionFailed, InvalidTransition, *_ACTION_PROBLEMS.get(action, ())
        ),
    )


for _action, _operation_id, _body, _summary in _ACTION_ROUTES:
    _register(_action, _operation_id, _body, _summary)
