"""The change feed (api-contract.md: ``listEvents``): every referral event the caller may see,
in commit order, with a stable cursor, so a CRM can sync incrementally."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.core.auth import Principal, Role, Scope, require
from app.core.deps import RequestClock, Session
from app.core.pagination import Limit
from app.referrals import service
from app.referrals.schemas import EventPage

router = APIRouter(prefix="/v1/events", tags=["events"])

Reader = Annotated[
    Principal,
    Depends(require(Role.jcp, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]


@router.get("", operation_id="listEvents", response_model=EventPage)
async def list_events(
    principal: Reader,
    session: Session,
    clock: RequestClock,
    after: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Resume after this event: a `cursor` (or `next_cursor`) seen before.",
        ),
    ] = None,
    limit: Limit = 50,
) -> EventPage:
    """Events oldest first (a provider: its own referrals'). Keep the `cursor` of the last
    event you processed and poll with `after=` it: nothing is skipped or repeated, even
    when several replicas write at once. `next_cursor` is null when there is no more now."""
    items, next_cursor = await service.change_feed(
        session, clock, principal, after=after, limit=limit
    )
    return EventPage(items=items, next_cursor=next_cursor)
