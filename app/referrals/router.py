"""Referral endpoints (api-contract.md, Referrals). Each parses, authorises and calls one
service function. Each action endpoint takes its route, documentation and role from its row
in the transition table (``action_route``), so each admits exactly the role the table names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.schemas import ProviderId, WithoutNul
from app.core.auth import BEARER_SECURITY, Principal, Role, Scope, admission, require
from app.core.clock import Clock
from app.core.deps import IfMatch, IfNoneMatch, RequestClock, Session, clock_of
from app.core.etags import NOT_MODIFIED, etag, if_none_match_matches, not_modified
from app.core.pagination import CursorParam, Limit
from app.core.problems import (
    ExclusiveProgramme,
    InvalidTransition,
    MappaContactDetails,
    NoContract,
    NotFound,
    OpenReferralExists,
    PreconditionFailed,
    ReReferralNotAllowed,
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
from app.referrals.states import ReferralAction, ReferralStatus
from app.referrals.transitions import TRANSITIONS

router = APIRouter(prefix="/v1/referrals", tags=["referrals"])

Creator = Annotated[Principal, Depends(require(Role.jcp))]
Reader = Annotated[
    Principal,
    Depends(require(Role.jcp, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
ReferralId = Annotated[
    str, Path(alias="id", max_length=40, description="The id the service assigned."), WithoutNul
]


class ReferralJSON(Response):
    """A referral as JSON with its ``ETag``, serialised once, by pydantic (``response_model``
    still documents it; FastAPI passes a returned ``Response`` through as it is)."""

    media_type = "application/json"

    def __init__(self, referral: ReferralOut, status_code: int = 200) -> None:
        super().__init__(
            referral.model_dump_json(),
            status_code=status_code,
            headers={"ETag": etag(referral.version)},
        )


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
    digests: Digests,
) -> Response:
    """Refer a participant to a provider holding a contract for the programme. The referral
    date is today; a participant with an open referral on the programme (Job Finding Support
    guidance 5.19), or who started on it before (3.42, 5.16), cannot be referred again."""
    referral = await service.create_referral(session, clock, principal, body, digests)
    created = ReferralJSON(referral, status_code=201)
    created.headers["Location"] = f"/v1/referrals/{referral.id}"
    return created


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
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The referral, with its `ETag`; `allowed_actions` says what the caller may do next."""
    referral = await service.get_referral(session, clock, principal, referral_id)
    if if_none_match is not None and if_none_match_matches(if_none_match, referral.version):
        return not_modified(referral.version)
    return ReferralJSON(referral)


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


# --- actions: one endpoint each, documented and guarded from its row in the table -----------


def action_route(action: ReferralAction) -> Callable[[Endpoint], Endpoint]:
    """``POST /v1/referrals/{id}/<action>`` as the transition table's row describes it: its
    operation id, summary, description and problems, and the role (and scope) the row names,
    checked before anything else (403, then 415, then 422)."""
    transition = TRANSITIONS[action]
    assert transition.endpoint is not None, action
    assert transition.role is not None, action
    scopes = () if transition.scope is None else (transition.scope,)
    return router.post(
        f"/{{id}}/{action.value}",
        operation_id=transition.endpoint.operation_id,
        response_model=ReferralOut,
        summary=transition.endpoint.summary,
        description=transition.description,
        responses=problem_responses(*transition.problems),
        dependencies=[Depends(admission(transition.role, scopes=scopes))],
        openapi_extra=BEARER_SECURITY,
    )


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What every action endpoint passes on: the request's session, clock and caller (the
    route's role dependency has admitted them) and its ``If-Match``."""

    session: AsyncSession
    clock: Clock
    principal: Principal
    if_match: str | None

    async def __call__(
        self, action: ReferralAction, referral_id: str, body: service.ActionBody | None
    ) -> ReferralJSON:
        transition = TRANSITIONS[action]
        assert transition.endpoint is not None
        referral = await service.perform(
            self.session,
            self.clock,
            self.principal,
            referral_id,
            action,
            body,
            self.if_match,
            transition.endpoint.operation_id,
        )
        return ReferralJSON(referral)


async def action_request(request: Request, if_match: IfMatch = None) -> ActionRequest:
    """What every action needs, as one dependency on the hot path: the request's session
    (opened by the unit of work), its clock, and its caller, whom the route's role
    dependency (``action_route``, solved before this) has admitted."""
    principal: Principal = request.state.principal
    return ActionRequest(request.state.db, await clock_of(request), principal, if_match)


Act = Annotated[ActionRequest, Depends(action_request)]


@action_route(ReferralAction.acknowledge)
async def acknowledge_referral(
    referral_id: ReferralId, act: Act, body: Annotated[EmptyBody | None, Body()] = None
) -> Response:
    return await act(ReferralAction.acknowledge, referral_id, body)


@action_route(ReferralAction.accept)
async def accept_referral(
    referral_id: ReferralId, act: Act, body: Annotated[EmptyBody | None, Body()] = None
) -> Response:
    return await act(ReferralAction.accept, referral_id, body)


@action_route(ReferralAction.reject)
async def reject_referral(
    referral_id: ReferralId, act: Act, body: Annotated[RejectBody, Body()]
) -> Response:
    return await act(ReferralAction.reject, referral_id, body)


@action_route(ReferralAction.cancel)
async def cancel_referral(
    referral_id: ReferralId, act: Act, body: Annotated[CancelBody, Body()]
) -> Response:
    return await act(ReferralAction.cancel, referral_id, body)


@action_route(ReferralAction.did_not_attend)
async def record_did_not_attend(
    referral_id: ReferralId, act: Act, body: Annotated[DidNotAttendBody, Body()]
) -> Response:
    return await act(ReferralAction.did_not_attend, referral_id, body)


@action_route(ReferralAction.did_not_start)
async def record_did_not_start(
    referral_id: ReferralId, act: Act, body: Annotated[DidNotStartBody, Body()]
) -> Response:
    return await act(ReferralAction.did_not_start, referral_id, body)


@action_route(ReferralAction.start)
async def start_referral(
    referral_id: ReferralId, act: Act, body: Annotated[StartBody, Body()]
) -> Response:
    return await act(ReferralAction.start, referral_id, body)


@action_route(ReferralAction.end)
async def end_referral(
    referral_id: ReferralId, act: Act, body: Annotated[EndBody, Body()]
) -> Response:
    return await act(ReferralAction.end, referral_id, body)


@action_route(ReferralAction.back_out)
async def back_out_referral(
    referral_id: ReferralId, act: Act, body: Annotated[BackOutBody, Body()]
) -> Response:
    return await act(ReferralAction.back_out, referral_id, body)
