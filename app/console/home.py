"""Sign-in (sandbox), sign-out, and the home page: a provider's worklist (JFS 3.07, 3.37-3.40)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.console.auth import (
    PRESESSION_COOKIE,
    ConsoleUser,
    SignedIn,
    check_csrf,
    clear_session_cookie,
    presession_value,
    set_presession_cookie,
    set_session_cookie,
    settings_of,
)
from app.console.forms import FormError, form_fields
from app.console.routing import console_router, read_referrals
from app.console.templating import render
from app.core.auth import Principal, Role, Scope
from app.core.clock import Clock
from app.core.deps import RequestClock, Session
from app.core.problems import Forbidden, NotFound, ProblemError
from app.referrals import service as referrals
from app.referrals.schemas import ReferralOut
from app.referrals.states import ReferralStatus
from app.sandbox.router import TokenRequest
from app.sandbox.service import sandbox_token

router = console_router()

# How far ahead the worklist warns of the automatic did-not-attend (JFS 3.40).
NEARING_AUTO_DNA_DAYS = 7
# The worklist reads at most this many pages of 100 open referrals per status.
MAX_PAGES = 10


# --- sign-in ---------------------------------------------------------------------------


def _sign_in_page(
    request: Request, errors: list[FormError], values: dict[str, str], status: int = 200
) -> Response:
    if not settings_of(request).sandbox:
        # Production: the authenticating proxy signs people in (README, "The console").
        return render(request, "signed_out.html", {}, user=None, status_code=404)
    material = presession_value(request)
    response = render(
        request,
        "sign_in.html",
        {"errors": errors, "values": values, "roles": list(Role), "scopes": list(Scope)},
        user=None,
        status_code=status,
        csrf_material=material,
    )
    set_presession_cookie(response, settings_of(request), material)
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request, [], {"sub": "", "provider_id": "", "role": "provider"})


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    settings = settings_of(request)
    if not settings.sandbox:
        raise NotFound()
    form = await form_fields(request)
    check_csrf(settings, request.cookies.get(PRESESSION_COOKIE), form.get("csrf_token"))
    role = form.get("role", "")
    # Provider id and scopes belong to provider staff only (domain.md §1).
    is_provider = role == Role.provider.value
    scopes = [s.value for s in Scope if is_provider and form.get(f"scope-{s.value}")]
    data = {
        "sub": form.get("sub", "").strip(),
        "role": role,
        "provider_id": (form.get("provider_id", "").strip() or None) if is_provider else None,
        "scope": " ".join(scopes) or None,
    }
    try:
        body = TokenRequest.model_validate(data)
        token = sandbox_token(
            settings,
            sub=body.sub,
            role=body.role,
            provider_id=body.provider_id,
            scopes=scopes,
        )
    except ValidationError as error:
        errors = [
            FormError(str(e["loc"][0]), f"#{e['loc'][0]}", _sign_in_message(str(e["loc"][0])))
            for e in error.errors()
        ]
        return _sign_in_page(request, errors, form, 422)
    except ProblemError:
        errors = [FormError("provider_id", "#provider_id", "Enter the provider's id")]
        return _sign_in_page(request, errors, form, 422)
    response = RedirectResponse("/console", status_code=303)
    set_session_cookie(response, settings, token)
    return response


def _sign_in_message(field_name: str) -> str:
    return {
        "sub": "Enter your name or user id",
        "role": "Choose a role",
        "provider_id": "Enter a provider id of up to 32 letters, digits, - or _",
    }.get(field_name, "Check the form")


@router.post("/sign-out")
async def sign_out(request: Request, user: SignedIn) -> Response:
    form = await form_fields(request)
    check_csrf(settings_of(request), user.token, form.get("csrf_token"))
    target = "/console/sign-in" if settings_of(request).sandbox else "/console"
    response = RedirectResponse(target, status_code=303)
    clear_session_cookie(response)
    return response


# --- the worklist ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    referral: ReferralOut
    tag: str
    colour: str
    note: str = ""


@dataclass(slots=True)
class Worklist:
    awaiting_acknowledgement: list[Row] = field(default_factory=list)
    nearing_auto_dna: list[Row] = field(default_factory=list)
    back_outs: list[Row] = field(default_factory=list)
    overdue_back_outs: list[Row] = field(default_factory=list)

    def referral_ids(self) -> list[str]:
        rows = (
            self.awaiting_acknowledgement
            + self.nearing_auto_dna
            + self.back_outs
            + self.overdue_back_outs
        )
        return [r.referral.id for r in rows]


def acknowledgement_tag(due: date, today: date) -> tuple[str, str]:
    """JFS 3.07: acknowledge within 2 working days (the deadline is the service's)."""
    if due < today:
        return "Overdue", "red"
    if due == today:
        return "Due today", "orange"
    if due == today + timedelta(days=1):
        return "Due tomorrow", "yellow"
    return "Due later", "grey"


async def _open(
    session: AsyncSession, clock: Clock, principal: Principal, status: ReferralStatus
) -> list[ReferralOut]:
    items: list[ReferralOut] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page, cursor = await referrals.list_referrals(
            session,
            clock,
            principal,
            status=status,
            programme=None,
            provider_id=None,
            referred_from=None,
            referred_to=None,
            cursor=cursor,
            limit=100,
        )
        items += page
        if cursor is None:
            break
    return items


async def build_worklist(session: AsyncSession, clock: Clock, principal: Principal) -> Worklist:
    today = clock.today
    worklist = Worklist()
    for referral in await _open(session, clock, principal, ReferralStatus.referred):
        tag, colour = acknowledgement_tag(referral.acknowledgement_due, today)
        worklist.awaiting_acknowledgement.append(Row(referral, tag, colour))
    worklist.awaiting_acknowledgement.sort(key=lambda r: r.referral.acknowledgement_due)
    for status in (ReferralStatus.acknowledged, ReferralStatus.accepted):
        for referral in await _open(session, clock, principal, status):
            if referral.start_backed_out_at is not None:
                # SES 3.15, JFS 3.37-3.38: a backed-out start awaits its did-not-start.
                rows = worklist.overdue_back_outs if referral.cancel_overdue else worklist.back_outs
                rows.append(Row(referral, "Overdue" if referral.cancel_overdue else "Due", "red"))
                continue
            days = (referral.auto_dna_on - today).days
            if days <= NEARING_AUTO_DNA_DAYS:
                tag = "Closes today" if days <= 0 else f"{days} day{'s' * (days != 1)} left"
                worklist.nearing_auto_dna.append(
                    Row(referral, tag, "orange" if days > 2 else "red")
                )
    worklist.nearing_auto_dna.sort(key=lambda r: r.referral.auto_dna_on)
    return worklist


async def _may_read_referrals(request: Request, user: ConsoleUser) -> bool:
    try:
        await read_referrals(request, user)
    except Forbidden:
        return False
    return True


@router.get("")
async def home(
    request: Request, user: SignedIn, session: Session, clock: RequestClock
) -> HTMLResponse:
    worklist = None
    if user.principal.is_provider and await _may_read_referrals(request, user):
        # The worklist reads through the API's own list service, which records the read in
        # the audit (domain.md §10) as it does for any caller.
        worklist = await build_worklist(session, clock, user.principal)
    return render(request, "home.html", {"worklist": worklist, "today": clock.today}, user=user)


@router.get("/find")
async def find_referral(
    user: SignedIn,
    referral_id: Annotated[str, Query(alias="id", min_length=1, max_length=40)],
) -> Response:
    """A referral by its id (the id is no personal data; a NINO would never go in a URL)."""
    return RedirectResponse(f"/console/referrals/{quote(referral_id.strip(), safe='')}", 303)
