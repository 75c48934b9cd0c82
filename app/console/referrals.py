"""A referral's page: its details (MAPPA notice first), its history, and a form for exactly
each of its ``allowed_actions``, each calling the API's own ``perform``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, cast
from urllib.parse import quote

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.auth import ConsoleUser, check_csrf, settings_of
from app.console.forms import (
    ACTION_BODIES,
    ACTION_TITLES,
    FieldSpec,
    FormError,
    fields_of,
    form_fields,
    parse_body,
    problem_error,
)
from app.console.routing import ReferralReader, allow, console_router
from app.console.templating import render
from app.core.auth import Role
from app.core.clock import Clock
from app.core.deps import RequestClock, Session
from app.core.etags import etag
from app.core.problems import ProblemError
from app.referrals import service as referrals
from app.referrals.states import ActorRole, ReferralAction
from app.referrals.transitions import TRANSITIONS

router = console_router()

ReferralId = Annotated[str, Path(max_length=40)]
_ACTION_NAMES = frozenset(a.value for a in ReferralAction)


@dataclass(frozen=True, slots=True)
class ActionForm:
    action: ReferralAction
    title: str
    fields: list[FieldSpec]
    destructive: bool


def _forms(allowed: Sequence[str]) -> list[ActionForm]:
    return [
        ActionForm(
            action,
            ACTION_TITLES[action],
            fields_of(ACTION_BODIES[action]),
            TRANSITIONS[action].closes or action is ReferralAction.back_out,
        )
        for action in (ReferralAction(a) for a in allowed)
        if action in ACTION_BODIES
    ]


async def _page(
    request: Request,
    session: AsyncSession,
    clock: Clock,
    user: ConsoleUser,
    referral_id: str,
    *,
    done: str | None = None,
    errors: list[FormError] | None = None,
    failed: ReferralAction | None = None,
    values: dict[str, str] | None = None,
    problem: ProblemError | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    # Both services record the read in the audit (domain.md §10), as for any API caller.
    referral = await referrals.get_referral(session, clock, user.principal, referral_id)
    history = await referrals.referral_history(session, clock, user.principal, referral_id)
    response = render(
        request,
        "referral.html",
        {
            "referral": referral,
            "history": history,
            "forms": _forms(referral.allowed_actions),
            "done": ACTION_TITLES.get(ReferralAction(done)) if done in _ACTION_NAMES else None,
            "errors": errors or [],
            "failed": failed,
            "values": values or {},
            "problem": problem,
            "today": clock.today,
        },
        user=user,
        status_code=status_code,
    )
    response.headers["ETag"] = etag(referral.version)
    return response


@router.get("/referrals/{referral_id}")
async def referral_page(
    request: Request,
    referral_id: ReferralId,
    user: ReferralReader,
    session: Session,
    clock: RequestClock,
    done: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    return await _page(request, session, clock, user, referral_id, done=done)


@router.post("/referrals/{referral_id}/actions/{action}")
async def referral_action(
    request: Request,
    referral_id: ReferralId,
    action: ReferralAction,
    user: ReferralReader,
    session: Session,
    clock: RequestClock,
) -> Response:
    form = await form_fields(request)
    check_csrf(settings_of(request), user.token, form.get("csrf_token"))
    if action not in ACTION_BODIES:
        return await _page(request, session, clock, user, referral_id, status_code=404)
    # The role and scope the API's endpoint for this action admits (from the table).
    transition = TRANSITIONS[action]
    if transition.actor is ActorRole.post:
        await allow(Role.post)(request, user)
    else:
        assert transition.scope is not None
        await allow(Role.provider, scopes=(transition.scope,))(request, user)
    body, errors = parse_body(ACTION_BODIES[action], form, id_prefix=f"{action.value}-")
    if errors:
        return await _page(
            request, session, clock, user, referral_id,
            errors=errors, failed=action, values=form, status_code=422,
        )  # fmt: skip
    version = form.get("version", "").strip()
    assert transition.endpoint is not None  # ACTION_BODIES has the HTTP actions only
    try:
        await referrals.perform(
            session,
            clock,
            user.principal,
            referral_id,
            action,
            cast("referrals.ActionBody | None", body),
            etag(int(version)) if version.isdigit() else None,
            transition.endpoint.operation_id,
        )
    except ProblemError as error:
        if error.status == 404:
            raise
        await session.rollback()  # nothing of the refused action stays
        return await _page(
            request, session, clock, user, referral_id,
            errors=[problem_error(ACTION_BODIES[action], error, f"{action.value}-")],
            failed=action, values=form, problem=error, status_code=error.status,
        )  # fmt: skip
    return RedirectResponse(
        f"/console/referrals/{quote(referral_id, safe='')}?done={action.value}", status_code=303
    )
