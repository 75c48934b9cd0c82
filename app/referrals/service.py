"""Referral use cases. Each runs inside the request's transaction and only flushes; the
unit-of-work middleware commits (style.md, one transaction per request)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, TypeVar, overload

from pydantic import BaseModel, ValidationError
from sqlalchemy import Row, Select, Subquery
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.audit.service import record_read
from app.claims import service as claims
from app.contracts.service import contract_in_force
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.etags import if_match_allows
from app.core.ids import new_id
from app.core.problems import (
    FieldError,
    InvalidTransition,
    NoContract,
    OpenReferralExists,
    PreconditionFailed,
    SegregationOfDuties,
    ValidationProblem,
)
from app.privacy.rules import shows_personal_data
from app.programmes.service import exclusive_programmes, programme_params
from app.referrals import repository, rules
from app.referrals.digests import NinoDigests
from app.referrals.models import Referral, ReferralEvent
from app.referrals.repository import (
    event_cursor,
    get_readable,
    insert_referral,
    lock_participant,
    past_deadline,
    read_for_action,
    read_referral,
    referrals_of,
    write_change,
)
from app.referrals.schemas import (
    Actor,
    BackOutBody,
    CancelBody,
    Details,
    DidNotAttendBody,
    DidNotStartBody,
    EmptyBody,
    EndBody,
    EventOut,
    Markers,
    Participant,
    ParticipantPatch,
    ReferralCreate,
    ReferralOut,
    RejectBody,
    StartBody,
)
from app.referrals.states import (
    ActorRole,
    CallerAction,
    EventType,
    ReferralAction,
    ReferralStatus,
)
from app.referrals.transitions import HTTP_ACTIONS, TRANSITIONS, Transition, due_system_action
from app.webhooks import service as webhooks

M = TypeVar("M", bound=BaseModel)

ActionBody = (
    EmptyBody
    | RejectBody
    | CancelBody
    | DidNotAttendBody
    | DidNotStartBody
    | StartBody
    | EndBody
    | BackOutBody
)


# --- representations -----------------------------------------------------------------------


# A referral as read: the ORM object, or a row the action path returned (the same names).
ReferralRead = Referral | Row[Any]


@functools.cache
def _candidates(
    status: ReferralStatus, role: str, scopes: frozenset[str], back_out_pending: bool
) -> tuple[tuple[CallerAction, Transition], ...]:
    """The actions the table, the caller's role and scope and a pending back-out allow, with
    their rows: computed once per combination; only the time rules remain per request."""
    return tuple(
        (CallerAction(action.value), transition)
        for action in HTTP_ACTIONS
        if str((transition := TRANSITIONS[action]).actor) == role
        and (transition.scope is None or str(transition.scope) in scopes)
        and transition.allows(status, back_out_pending=back_out_pending)
    )


def allowed_actions(
    referral: ReferralRead, principal: Principal, clock: Clock
) -> list[CallerAction]:
    """What this caller may do next: the transition table, the caller's role and scope, and
    the time rules, all as the action endpoints themselves apply them."""
    candidates = _candidates(
        ReferralStatus(referral.status),
        str(principal.role),
        principal.scopes,
        rules.back_out_pending(referral),
    )
    today = clock.today
    return [
        action
        for action, transition in candidates
        if all(time_rule.holds(referral, today) for time_rule in transition.time_rules)
    ]


def to_out(referral: ReferralRead, principal: Principal, clock: Clock) -> ReferralOut:
    return ReferralOut(
        id=referral.id,
        programme=referral.programme,
        provider_id=referral.provider_id,
        contract_id=referral.contract_id,
        status=ReferralStatus(referral.status),
        referral_date=referral.referral_date,
        acknowledgement_due=referral.acknowledgement_due,
        acknowledged_at=referral.acknowledged_at,
        accepted_at=referral.accepted_at,
        start_date=referral.start_date,
        initial_meeting_date=referral.initial_meeting_date,
        end_date=referral.end_date,
        end_code=referral.end_code,
        last_engagement_date=referral.last_engagement_date,
        policy_reference=referral.policy_reference,
        provider_reference=referral.provider_reference,
        rejection_reason=referral.rejection_reason,
        cancellation_reason=referral.cancellation_reason,
        closed_by=referral.closed_by,
        closed_at=referral.closed_at,
        start_backed_out_at=referral.start_backed_out_at,
        cancel_overdue=rules.cancel_overdue(referral, clock),
        re_referral=referral.re_referral,
        mappa=referral.mappa,
        mappa_notice=rules.MAPPA_NOTICE if referral.mappa else None,
        erased_at=referral.erased_at,
        auto_dna_on=referral.auto_dna_on,
        auto_end_on=referral.auto_end_on,
        participant=_validated(Participant, referral.participant),
        markers=_validated(Markers, referral.markers),
        details=_validated(Details, referral.details),
        allowed_actions=allowed_actions(referral, principal, clock),
        version=referral.version,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
    )


def _validated(model: type[M], value: dict[str, Any] | None) -> M | None:
    return None if value is None else model.model_validate(value)


def shown(referrals: Sequence[ReferralRead]) -> list[str]:
    """The referrals whose personal data a response shows (an erased one shows none)."""
    return [r.id for r in referrals if r.erased_at is None]


def event_out(event: ReferralEvent) -> EventOut:
    data = {k: v for k, v in event.data.items() if k in EventOut.model_fields and v is not None}
    return EventOut.model_validate(
        {
            **data,
            "id": event.id,
            "cursor": event_cursor(event),
            "referral_id": event.referral_id,
            "type": event.type,
            "occurred_at": event.occurred_at,
            "actor": Actor(
                sub=event.actor_sub,
                role=ActorRole(event.actor_role),
                provider_id=event.actor_provider_id,
            ),
            "status": event.status,
            "version": event.referral_version,
            "provider_id": event.provider_id,
        }
    )


# --- writing -------------------------------------------------------------------------------


async def _record_event(
    session: AsyncSession,
    referral: Referral,
    event_type: EventType,
    principal: Principal | None,
    clock: Clock,
    data: dict[str, Any],
    *,
    version: int,
) -> None:
    """Add the event, and its pending webhook deliveries (the outbox), to the session; the
    caller's flush writes them with the change, in one transaction. A ``principal`` of None
    is the service itself (the automatic closes)."""
    actor = (
        (str(ActorRole.system), str(ActorRole.system), None)
        if principal is None
        else (principal.sub, str(principal.role), principal.provider_id)
    )
    event = repository.add_event(
        session,
        referral,
        event_type,
        clock.now,
        actor,
        version,
        {k: v for k, v in data.items() if v is not None},
    )
    await webhooks.enqueue_for_event(session, event)


async def create_referral(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    body: ReferralCreate,
    digests: NinoDigests,
) -> ReferralOut:
    """domain.md §5: contract, open referral (JFS 5.19), re-referral (JFS 3.42, 5.16, 1.23),
    exclusive programmes (HTW 70)."""
    rules.check_mappa(body.markers.mappa, body.participant.has_contact_details())
    referral_date = clock.today
    programme = await programme_params(session, str(body.programme))
    contract_id = await contract_in_force(
        session, provider_id=body.provider_id, programme=programme.code, on=referral_date
    )
    if contract_id is None:
        raise NoContract()
    nino_digests = digests.every(body.participant.nino)
    await lock_participant(session, digests.current(body.participant.nino))
    # A referral past its deadline is closed whether or not the job has run (JFS 3.40, 5.08):
    # it must not count as open here.
    # One read of every referral of the participant (erased ones included, domain.md §10)
    # answers all three questions: this programme's history, and what is open elsewhere.
    every = await _settled(session, clock, await referrals_of(session, nino_digests))
    re_referral = rules.classify_new_referral(
        [r for r in every if r.programme == programme.code],
        programme.max_re_referrals,
        programme.max_duration_working_days,
    )
    rules.check_exclusive_programmes(
        [
            r.programme
            for r in every
            if r.programme != programme.code and ReferralStatus(r.status).is_open
        ],
        await exclusive_programmes(session),
    )
    participant = body.participant.model_dump(mode="json", exclude_none=True)
    values = {
        "id": new_id(),
        "programme": programme.code,
        "provider_id": body.provider_id,
        "contract_id": contract_id,
        "status": ReferralStatus.referred,
        "nino_digest": digests.current(body.participant.nino),
        "referral_date": referral_date,
        "acknowledgement_due": rules.acknowledgement_deadline(
            referral_date, programme.acknowledge_working_days
        ),
        "auto_dna_on": referral_date + timedelta(days=programme.auto_dna_days),  # JFS 3.40
        "initial_meeting_due": rules.working_day_deadline(
            referral_date, programme.initial_meeting_working_days
        ),
        "outcome_recorded_due": rules.working_day_deadline(
            referral_date, programme.outcome_recorded_working_days
        ),
        "re_referral": re_referral,
        "mappa": body.markers.mappa,
        "participant": participant,
        "markers": body.markers.model_dump(mode="json"),
        "details": body.details.model_dump(mode="json", exclude_none=True),
        "created_at": clock.now,
        "updated_at": clock.now,
        "version": 1,
    }
    event = _event_values(
        EventType.created,
        principal,
        clock,
        {
            "programme": programme.code,
            "referral_date": referral_date.isoformat(),
            "re_referral": re_referral,
        },
    )
    try:
        referral, _ = await insert_referral(session, values, event, webhooks.deliveries_for)
    except IntegrityError as error:
        # A concurrent request referred the same participant a moment ago: the partial
        # unique index on open referrals (JFS 5.19) let only one through.
        raise OpenReferralExists() from error
    await record_read(session, principal, clock, "createReferral", [referral.id])
    return to_out(referral, principal, clock)


def _event_values(
    event_type: EventType, principal: Principal, clock: Clock, data: dict[str, Any]
) -> dict[str, Any]:
    """An event's own columns, for ``insert_referral`` and ``write_change`` (the rest come
    from the row written)."""
    return {
        "type": str(event_type),
        "occurred_at": clock.now,
        "actor_sub": principal.sub,
        "actor_role": str(principal.role),
        "actor_provider_id": principal.provider_id,
        "data": {k: v for k, v in data.items() if v is not None},
    }


async def _flush_change(session: AsyncSession) -> None:
    """Write a change and its event in one flush. The UPDATE is conditional on the version
    read (version_id_col): 0 rows means another request changed the referral meanwhile."""
    try:
        await session.flush()
    except StaleDataError as error:
        raise InvalidTransition("The referral changed meanwhile; read it again.") from error


@overload
async def settle_deadlines(session: AsyncSession, clock: Clock, referral: Referral) -> Referral: ...
@overload
async def settle_deadlines(
    session: AsyncSession, clock: Clock, referral: ReferralRead
) -> ReferralRead: ...
async def settle_deadlines(
    session: AsyncSession, clock: Clock, referral: ReferralRead
) -> ReferralRead:
    """JFS 3.40, 5.08, domain.md §4: a referral past its ``auto_dna_on`` or ``auto_end_on`` is
    closed by the system, whether or not the daily job has run. The first path to touch it
    records the close, once: the row is locked and read again (the job takes its rows FOR
    UPDATE SKIP LOCKED and re-checks the status, so it skips or waits for this one), and
    the UPDATE is conditional on the version read, like every referral change."""
    if due_system_action(referral, clock.today) is None:
        return referral
    referral = await repository.lock_and_read_again(session, referral.id)
    action = due_system_action(referral, clock.today)
    if action is None:
        return referral  # the job closed it meanwhile
    change = TRANSITIONS[action].effect(referral, None, None, clock)
    for name, value in change.fields.items():
        setattr(referral, name, value)
    referral.updated_at = clock.now
    await _record_event(
        session,
        referral,
        TRANSITIONS[action].event,
        None,
        clock,
        change.event_data,
        version=referral.version + 1,
    )
    await _flush_change(session)
    return referral


async def _settled(
    session: AsyncSession, clock: Clock, referrals: Sequence[ReferralRead]
) -> list[ReferralRead]:
    """Settle several referrals, locking them in id order whatever order they are shown in,
    so that two requests settling overlapping sets can never deadlock."""
    settled = {
        r.id: await settle_deadlines(session, clock, r)
        for r in sorted(referrals, key=lambda r: r.id)
    }
    return [settled[r.id] for r in referrals]


async def perform(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    referral_id: str,
    action: ReferralAction,
    body: ActionBody | None,
    if_match: str | None,
    operation: str,
) -> ReferralOut:
    """Apply one action: 404 (tenancy), 412 (If-Match), then the row's guards and effect.

    The hot path (issue 13): the referral is read as a row, locked, and changed by one
    conditional ``UPDATE ... RETURNING`` with its event (on PostgreSQL in the same statement),
    without the ORM's unit of work; the answer is built from the returned row."""
    transition = TRANSITIONS[action]
    if transition.endpoint is None:
        raise InvalidTransition()  # the system's own actions run as jobs
    referral: Referral | Row[Any] = await read_for_action(session, principal, referral_id)
    if due_system_action(referral, clock.today) is not None:
        # Past its deadline: closed by the system first (JFS 3.40, 5.08), through the ORM as
        # on every other path; the refusal below then says so.
        referral = await settle_deadlines(
            session, clock, await get_readable(session, principal, referral_id, for_update=True)
        )
    if if_match is not None and not if_match_allows(if_match, referral.version):
        raise PreconditionFailed()
    transition.check(referral, clock.today)
    if transition.segregated and await claims.has_claimed_for(session, referral.id, principal):
        # GEN 122 both ways: whoever claimed for a referral may not record its start or end.
        raise SegregationOfDuties()
    programme = await programme_params(session, referral.programme)
    change = transition.effect(referral, body, programme, clock)
    written = await write_change(
        session,
        referral.id,
        referral.version,
        transition.sources,
        change.fields | {"updated_at": clock.now},
        _event_values(transition.event, principal, clock, change.event_data),
        webhooks.deliveries_for,
    )
    if written is None:
        # Another request changed the referral between our read and our write.
        raise InvalidTransition("The referral changed meanwhile; read it again.")
    changed, _ = written
    if action is ReferralAction.back_out:
        # SES 3.15: the attachment fee was earned by a start that did not happen.
        await claims.void_attachment_claims(session, clock, principal, changed.id)
    await record_read(session, principal, clock, operation, shown([changed]))
    return to_out(changed, principal, clock)


async def update_participant(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    referral_id: str,
    patch: ParticipantPatch,
    if_match: str | None,
) -> ReferralOut:
    """JFS 4.23-4.24, domain.md §5a: Jobcentre Plus updates the participant's details on an
    open referral (a merge patch; the NINO cannot change). One ``participant_changed`` event
    names the fields that changed, never their values; a MAPPA referral still takes no
    address, postcode or telephone numbers (SES 3.32)."""
    referral = await get_readable(session, principal, referral_id, for_update=True)
    referral = await settle_deadlines(session, clock, referral)
    if if_match is not None and not if_match_allows(if_match, referral.version):
        raise PreconditionFailed()
    rules.check_participant_changeable(referral)
    current = referral.participant
    if current is None:  # erased: only closed referrals are, and those are refused above
        raise InvalidTransition()
    merged = rules.merge_patch(current, patch.as_merge_patch())
    try:
        participant = Participant.model_validate(merged)
    except ValidationError as error:
        # e.g. a required name removed with null: refused as a body that breaks the schema,
        # with the messages only (never the values sent).
        raise ValidationProblem(
            errors=[
                FieldError(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"])
                for e in error.errors(include_input=False)
            ]
        ) from None
    rules.check_mappa(bool(referral.mappa), participant.has_contact_details())
    after = participant.model_dump(mode="json", exclude_none=True)
    changed = rules.changed_fields(current, after)
    # domain.md §10: the answer shows the participant, so it is a read like any other.
    await record_read(session, principal, clock, "updateParticipant", shown([referral]))
    if not changed:
        return to_out(referral, principal, clock)
    referral.participant = after
    referral.updated_at = clock.now
    await _record_event(
        session,
        referral,
        EventType.participant_changed,
        principal,
        clock,
        {"changed_fields": changed},
        version=referral.version + 1,
    )
    await _flush_change(session)
    return to_out(referral, principal, clock)


# --- reading -------------------------------------------------------------------------------


async def get_referral(
    session: AsyncSession, clock: Clock, principal: Principal, referral_id: str
) -> ReferralOut:
    referral: Referral | Row[Any] = await read_referral(session, principal, referral_id)
    if due_system_action(referral, clock.today) is not None:
        # Past its deadline: closed by the system first (JFS 3.40, 5.08), as ``perform``.
        referral = await settle_deadlines(
            session, clock, await get_readable(session, principal, referral_id)
        )
    await record_read(session, principal, clock, "getReferral", shown([referral]))
    return to_out(referral, principal, clock)


async def list_referrals(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    *,
    status: ReferralStatus | None,
    programme: str | None,
    provider_id: str | None,
    referred_from: date | None,
    referred_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ReferralOut], str | None]:
    page, next_cursor = await repository.page_of(
        session,
        principal,
        filters={"status": status, "programme": programme, "provider_id": provider_id},
        referred_from=referred_from,
        referred_to=referred_to,
        cursor=cursor,
        limit=limit,
    )
    settled = await _settled(session, clock, page)
    await record_read(session, principal, clock, "listReferrals", shown(settled))
    return [to_out(r, principal, clock) for r in settled], next_cursor


async def search_referrals(
    session: AsyncSession, clock: Clock, principal: Principal, digests: NinoDigests, nino: str
) -> list[ReferralOut]:
    found = await _settled(
        session, clock, await repository.found_by_nino(session, principal, digests.every(nino))
    )
    await record_read(session, principal, clock, "searchReferrals", shown(found))
    return [to_out(r, principal, clock) for r in found]


async def referral_history(
    session: AsyncSession, clock: Clock, principal: Principal, referral_id: str
) -> list[EventOut]:
    referral = await settle_deadlines(
        session, clock, await get_readable(session, principal, referral_id)
    )
    # The history's notes and reasons may be personal data.
    await record_read(session, principal, clock, "getReferralHistory", shown([referral]))
    return [
        event_out(e) for e in await repository.readable_history(session, principal, referral_id)
    ]


async def change_feed(
    session: AsyncSession, clock: Clock, principal: Principal, *, after: str | None, limit: int
) -> tuple[list[EventOut], str | None]:
    """Events in commit order: (transaction id, event id). On PostgreSQL, events of
    transactions that may still be in flight are held back until they settle, so a reader
    polling with ``after`` never skips an event nor sees one twice.

    The feed is a read too (JFS 3.40, 5.08): closes that have fallen due among the caller's
    referrals are recorded first, a page's worth at a time, so a CRM polling the feed learns
    of them even while the job is down."""
    await _settled(session, clock, await past_deadline(session, principal, clock.today, limit))
    page, next_cursor = await repository.page_of_events(
        session, principal, after=after, limit=limit
    )
    # GEN 71: a page of events shows a participant's personal data where an event carries a
    # note or a free-text reason; those referrals are in the read audit, once per page.
    await record_read(
        session,
        principal,
        clock,
        "listEvents",
        [e.referral_id for e in page if shows_personal_data(e.type, e.data)],
    )
    return [event_out(e) for e in page], next_cursor


# --- for other features ---
# What other features may ask of referrals and their events (tests/system/
# test_feature_boundaries): they never read the referral tables themselves.


async def lock_readable_referral(
    session: AsyncSession, principal: Principal, referral_id: str
) -> Referral:
    """The referral, locked for the caller's change (a claim on it, its erasure); 404 when
    the caller may not see it (domain.md §1). The caller reads it and changes nothing."""
    return await repository.get_readable(session, principal, referral_id, for_update=True)


async def referral_as_it_now_stands(
    session: AsyncSession, clock: Clock, principal: Principal, referral_id: str
) -> ReferralOut:
    """The referral read again after another feature changed it set-based in this transaction
    (its erasure), as the caller sees it. The caller locked it first
    (``lock_readable_referral``), which checked its tenancy."""
    referral = await repository.lock_and_read_again(session, referral_id)
    return to_out(referral, principal, clock)


async def recorded_start_or_end(
    session: AsyncSession, referral_id: str, sub: str, provider_id: str | None
) -> bool:
    """GEN 122: did this person record the referral's start or end? (claims)"""
    return await repository.recorded_start_or_end(session, referral_id, sub, provider_id)


@dataclass(frozen=True, slots=True)
class CohortCounts:
    """One cohort month's CSS 1 and CSS 2 counts (JFS 7.44, domain.md §9)."""

    month: str
    css1_eligible: int
    css1_met: int
    css2_eligible: int
    css2_met: int


async def cohort_counts(
    session: AsyncSession, contract_id: str, first: date, last: date
) -> list[CohortCounts]:
    """Per month of referral date between ``first`` and ``last`` (service credits)."""
    return [
        CohortCounts(r.month, r.css1_eligible, r.css1_met, r.css2_eligible, r.css2_met)
        for r in await repository.cohort_counts(session, contract_id, first, last)
    ]


async def referral_months(
    session: AsyncSession, contract_ids: Sequence[str], up_to: date
) -> set[tuple[str, str]]:
    """(contract id, ``YYYY-MM``) of each month up to ``up_to`` in which referrals were made
    to these contracts (payment runs, JFS 6.03)."""
    return await repository.referral_months(session, contract_ids, up_to)


def announced_events(events: Select[int]) -> Subquery:
    """The outbox's view of the events ``events`` selects: ``event_id``, ``referral_id``,
    ``provider_id``, ``type``, ``occurred_at`` (webhooks, for events written set-based)."""
    return repository.announced_events(events)


async def events_by_id(session: AsyncSession, event_ids: Sequence[int]) -> list[ReferralEvent]:
    """These events as they stand now (webhook deliveries, built at send time)."""
    return await repository.events_by_id(session, event_ids)


async def participant_referrals(
    session: AsyncSession, digests: NinoDigests, nino: str
) -> list[ReferralRead]:
    """Every referral of the participant, erased ones too: the digest still links them
    (subject access, domain.md §10)."""
    return await repository.referrals_of(session, digests.every(nino))


async def events_of_referrals(
    session: AsyncSession, referral_ids: Sequence[str]
) -> list[ReferralEvent]:
    """These referrals' histories, by referral then oldest first (subject access)."""
    return await repository.events_of_referrals(session, referral_ids)


async def erase_personal_data(
    session: AsyncSession,
    referral_ids: Sequence[str],
    *,
    clock: Clock,
    actor: tuple[str, str, str | None],
    data: dict[str, object],
    kept_fields: frozenset[str],
    coded_reason_events: frozenset[str],
) -> tuple[int, Select[int]]:
    """GEN 136-137, set-based (privacy decides what is personal): keep only ``kept_fields``
    of the referrals' events, add an ``erased`` event to each not erased yet, and clear its
    participant. Returns how many this call erased, and a select of the new events' ids (for
    the outbox)."""
    await repository.scrub_event_data(
        session, referral_ids, kept_fields=kept_fields, coded_reason_events=coded_reason_events
    )
    newly_erased = await repository.not_erased(session, referral_ids)
    await repository.add_events_set_based(
        session, referral_ids, EventType.erased, clock.now, actor, data
    )
    erased = await repository.clear_personal_data(session, referral_ids, clock.now)
    return erased, repository.events_of_type(newly_erased, EventType.erased)


async def closed_not_erased(
    session: AsyncSession, contract_ids: Sequence[str], after: str, limit: int
) -> list[str]:
    """A batch of closed referrals of these contracts not erased yet (retention, JFS 1.33),
    locked so that replicas share the work."""
    if not contract_ids:
        return []
    return await repository.closed_not_erased(session, contract_ids, after, limit)


async def with_participant_after(session: AsyncSession, after: str, limit: int) -> list[Any]:
    """(id, nino_digest, participant) of referrals still holding their participant, by id
    after ``after`` (re-keying the NINO digests)."""
    return await repository.with_participant_after(session, after, limit)


async def set_nino_digest(session: AsyncSession, referral_id: str, digest: str) -> None:
    await repository.set_nino_digest(session, referral_id, digest)


async def close_due_batch(
    session: AsyncSession,
    action: ReferralAction,
    clock: Clock,
    as_of: date,
    after: tuple[date, str],
    batch_size: int,
) -> tuple[int, tuple[date, str] | None]:
    """JFS 3.40, 5.08, the daily jobs: close, set-based, up to ``batch_size`` referrals whose
    system close ``action`` (a row of the table with a deadline) fell due by ``as_of``, in
    (deadline, id) order after the key ``after``, with their events and, in the same
    transaction, their pending webhook deliveries. Returns how many it closed and the
    batch's last key; None for the key when none was left."""
    closed = await repository.close_due_batch(
        session, TRANSITIONS[action], clock, as_of, after, batch_size
    )
    if closed is None:
        return 0, None
    # The outbox: the batch's events, announced set-based.
    await webhooks.enqueue_for_events(session, closed.events)
    return closed.count, closed.last
