"""The referral state machine: one table that drives everything (domain.md §4).

Each row carries all its action needs: the states it leaves and reaches, who may ask for it,
its guards (the back-out allowance, the time rules, segregation of duties), its effect (a
pure function from the referral, the body, the programme and the clock to the change), and,
for the actions a caller asks for over HTTP, its endpoint's body, operation id, summary and
problems; for the system's own closes, the deadline column the daily job reads. The router,
the service, the jobs, the partial indexes and ``allowed_actions`` all read ``TRANSITIONS``;
``tests/referrals/test_table_agreement.py`` proves they agree. Nothing else decides which
action may follow which state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel

from app.core.auth import Role, Scope
from app.core.clock import Clock
from app.core.problems import (
    AcknowledgementWindowClosed,
    DateOutOfRange,
    EndCodeAutomatedOnly,
    InvalidTransition,
    NotFound,
    PolicyReferenceRequired,
    PreconditionFailed,
    ProblemError,
    SegregationOfDuties,
)
from app.programmes.service import ProgrammeParams
from app.referrals import rules
from app.referrals.rules import ACKNOWLEDGEMENT_WINDOW, Change, DeadlineFacts, TimeRule
from app.referrals.schemas import (
    BackOutBody,
    CancelBody,
    DidNotAttendBody,
    DidNotStartBody,
    EmptyBody,
    EndBody,
    RejectBody,
    StartBody,
)
from app.referrals.states import (
    ActorRole,
    CancellationReason,
    EventType,
    ReferralAction,
    ReferralStatus,
)

S = ReferralStatus
A = ReferralAction

# An action's effect: what it writes (the columns that change and the event's data), from
# the referral as read, the request's body (None for the system's closes), the referral's
# programme (None where no effect reads it) and the clock.
Effect = Callable[[DeadlineFacts, Any, ProgrammeParams | None, Clock], Change]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How a caller asks for the action: ``POST /v1/referrals/{id}/<action>``."""

    operation_id: str
    summary: str
    body: type[BaseModel]
    # The problems the action itself can answer, besides NotFound, PreconditionFailed and
    # InvalidTransition, which every action can (ALWAYS_PROBLEMS).
    problems: tuple[type[ProblemError], ...] = ()


ALWAYS_PROBLEMS: tuple[type[ProblemError], ...] = (NotFound, PreconditionFailed, InvalidTransition)


@dataclass(frozen=True, slots=True)
class Transition:
    action: ReferralAction
    sources: frozenset[ReferralStatus]
    target: ReferralStatus
    actor: ActorRole
    event: EventType
    reference: str
    effect: Effect
    endpoint: Endpoint | None = None
    # JFS 3.37-3.38, SES 3.15: after POST backs out a start, the provider must cancel with
    # "did not start"; until then that is the only provider action allowed.
    allowed_after_back_out: bool = False
    time_rules: tuple[TimeRule, ...] = ()
    # GEN 122: whoever claimed for a referral may not record this action.
    segregated: bool = False
    # The system's closes: the referral column holding the day the close falls due.
    deadline: str | None = None

    @property
    def scope(self) -> Scope | None:
        """The provider scope the action needs (domain.md §1)."""
        return Scope.referrals if self.actor is ActorRole.provider else None

    @property
    def role(self) -> Role | None:
        """The token role that may ask for the action (None: the service's own)."""
        return None if self.actor is ActorRole.system else Role(self.actor.value)

    @property
    def closes(self) -> bool:
        return self.target.is_terminal

    @property
    def problems(self) -> tuple[type[ProblemError], ...]:
        """Every problem the action's endpoint can answer, in the document's order."""
        return ALWAYS_PROBLEMS + (self.endpoint.problems if self.endpoint else ())

    @property
    def description(self) -> str:
        """The endpoint's description in the OpenAPI document."""
        assert self.endpoint is not None
        sources = ", ".join(f"`{s}`" for s in sorted(self.sources))
        return (
            f"{self.endpoint.summary}\n\nBy `{self.actor}`; from {sources} to `{self.target}` "
            f"({self.reference})."
        )

    def allows(self, status: ReferralStatus, *, back_out_pending: bool) -> bool:
        """Whether the action may follow ``status`` (roles and time rules aside)."""
        if status not in self.sources:
            return False
        if back_out_pending and self.actor is ActorRole.provider:
            return self.allowed_after_back_out
        return True

    def check_state(self, referral: rules.ReferralFacts) -> None:
        """409 ``invalid-transition`` unless the action may follow the referral's state."""
        if not self.allows(
            ReferralStatus(referral.status), back_out_pending=rules.back_out_pending(referral)
        ):
            raise InvalidTransition()

    def check(self, referral: rules.ReferralFacts, today: date) -> None:
        """The guards the row names, state first, then the time rules (their own problems)."""
        self.check_state(referral)
        for time_rule in self.time_rules:
            time_rule.check(referral, today)


# --- the effects: each an existing rule, given what it reads -------------------------------


def _acknowledge(r: DeadlineFacts, body: Any, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.acknowledge(clock)


def _accept(r: DeadlineFacts, body: Any, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.accept(r, clock)


def _reject(r: DeadlineFacts, body: RejectBody, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.reject(clock, body.reason, body.note)


def _cancel(r: DeadlineFacts, body: CancelBody, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.cancel(r, clock, body.reason, body.note)


def _did_not_attend(
    r: DeadlineFacts, body: DidNotAttendBody, p: ProgrammeParams | None, clock: Clock
) -> Change:
    return rules.cancel(r, clock, CancellationReason.did_not_attend, body.note)


def _did_not_start(
    r: DeadlineFacts, body: DidNotStartBody, p: ProgrammeParams | None, clock: Clock
) -> Change:
    return rules.cancel(
        r, clock, CancellationReason.did_not_start, body.note, body.initial_meeting_date
    )


def _start(r: DeadlineFacts, body: StartBody, p: ProgrammeParams | None, clock: Clock) -> Change:
    assert p is not None  # the service passes the referral's programme
    return rules.start(
        r, clock, body.start_date, body.provider_reference, p.allotted_days, p.allotted_from
    )


def _end(r: DeadlineFacts, body: EndBody, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.end(
        r, clock, body.end_code, body.end_date, body.last_engagement_date, body.policy_reference
    )


def _back_out(
    r: DeadlineFacts, body: BackOutBody, p: ProgrammeParams | None, clock: Clock
) -> Change:
    return rules.back_out(r, clock, body.reason)


def _auto_dna(r: DeadlineFacts, body: None, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.auto_did_not_attend(clock, clock.today)


def _auto_end(r: DeadlineFacts, body: None, p: ProgrammeParams | None, clock: Clock) -> Change:
    return rules.auto_end(r.auto_end_on, clock, clock.today)


PROVIDER = ActorRole.provider
WINDOW = (ACKNOWLEDGEMENT_WINDOW,)

# fmt: off
TRANSITIONS: dict[ReferralAction, Transition] = {
    t.action: t
    for t in (
        Transition(
            A.acknowledge, frozenset({S.referred}), S.acknowledged, PROVIDER,
            EventType.acknowledged, "JFS 3.07", _acknowledge,
            Endpoint("acknowledgeReferral", "Acknowledge (JFS 3.07).", EmptyBody,
                     (AcknowledgementWindowClosed,)),
            time_rules=WINDOW,
        ),
        Transition(
            A.accept, frozenset({S.referred, S.acknowledged}), S.accepted, PROVIDER,
            EventType.accepted, "JFS 3.08", _accept,
            Endpoint("acceptReferral", "Accept; accepting also acknowledges.", EmptyBody,
                     (AcknowledgementWindowClosed,)),
            time_rules=WINDOW,
        ),
        Transition(
            A.reject, frozenset({S.referred, S.acknowledged}), S.rejected, PROVIDER,
            EventType.rejected, "JFS 3.35-3.36, SES 3.8-3.13", _reject,
            Endpoint("rejectReferral", "Reject (JFS 3.35-3.36).", RejectBody),
        ),
        Transition(
            A.cancel, frozenset({S.acknowledged, S.accepted}), S.cancelled, PROVIDER,
            EventType.cancelled, "JFS annex 2, SES 3.14", _cancel,
            Endpoint("cancelReferral", "Cancel (JFS annex 2, SES 3.14).", CancelBody),
            allowed_after_back_out=True,
        ),
        Transition(
            A.did_not_attend, frozenset({S.acknowledged, S.accepted}), S.cancelled, PROVIDER,
            EventType.did_not_attend, "JFS 3.33-3.34", _did_not_attend,
            Endpoint("recordDidNotAttend",
                     "The participant failed to attend the initial meeting (JFS 3.33-3.34).",
                     DidNotAttendBody),
        ),
        Transition(
            A.did_not_start, frozenset({S.acknowledged, S.accepted}), S.cancelled, PROVIDER,
            EventType.did_not_start, "JFS 3.31-3.32, 3.37", _did_not_start,
            Endpoint("recordDidNotStart",
                     "Attended but did not start, or cancelled before the meeting "
                     "(JFS 3.31-3.32).",
                     DidNotStartBody, (DateOutOfRange,)),
            allowed_after_back_out=True,
        ),
        Transition(
            A.start, frozenset({S.accepted}), S.started, PROVIDER, EventType.started,
            "JFS 3.27, annex 3", _start,
            Endpoint("startReferral", "Record the start (JFS 3.27).", StartBody,
                     (AcknowledgementWindowClosed, DateOutOfRange, SegregationOfDuties)),
            time_rules=WINDOW, segregated=True,
        ),
        Transition(
            A.end, frozenset({S.started}), S.ended, PROVIDER, EventType.ended, "JFS annex 2",
            _end,
            Endpoint("endReferral", "Record the end (JFS annex 2).", EndBody,
                     (EndCodeAutomatedOnly, PolicyReferenceRequired, DateOutOfRange,
                      SegregationOfDuties)),
            segregated=True,
        ),
        Transition(
            A.back_out, frozenset({S.started}), S.accepted, ActorRole.post, EventType.backed_out,
            "SES 3.15, JFS 3.37-3.38", _back_out,
            Endpoint("backOutReferral",
                     "POST backs out a recorded start (SES 3.15, JFS 3.37-3.38).", BackOutBody),
        ),
        Transition(
            A.auto_dna, frozenset({S.referred, S.acknowledged, S.accepted}), S.cancelled,
            ActorRole.system, EventType.auto_did_not_attend, "JFS 3.40", _auto_dna,
            deadline="auto_dna_on",
        ),
        Transition(
            A.auto_end, frozenset({S.started}), S.ended, ActorRole.system, EventType.auto_ended,
            "JFS 5.08", _auto_end, deadline="auto_end_on",
        ),
    )
}
# fmt: on

# The actions a person can ask for over HTTP (the system's own run as jobs), and those.
HTTP_ACTIONS = tuple(a for a, t in TRANSITIONS.items() if t.endpoint is not None)
SYSTEM_TRANSITIONS = tuple(t for t in TRANSITIONS.values() if t.deadline is not None)


def transition_for(action: ReferralAction) -> Transition:
    return TRANSITIONS[action]


def state_allows(action: ReferralAction, status: ReferralStatus, *, back_out_pending: bool) -> bool:
    """Whether ``action`` may follow ``status`` (roles and time rules aside)."""
    return TRANSITIONS[action].allows(status, back_out_pending=back_out_pending)


def check_state(referral: rules.ReferralFacts, action: ReferralAction) -> None:
    """409 ``invalid-transition`` unless the table lets ``action`` follow the referral's state."""
    TRANSITIONS[action].check_state(referral)


def check_time_rules(referral: rules.ReferralFacts, action: ReferralAction, today: date) -> None:
    """The time rules the action's row names (JFS 3.07-3.08, the acknowledgement window)."""
    for time_rule in TRANSITIONS[action].time_rules:
        time_rule.check(referral, today)


def action_possible(referral: rules.ReferralFacts, action: ReferralAction, today: date) -> bool:
    """State and time rules both allow the action (for ``allowed_actions``)."""
    try:
        TRANSITIONS[action].check(referral, today)
    except ProblemError:
        return False
    return True


def due_system_action(referral: DeadlineFacts, today: date) -> ReferralAction | None:
    """The system's close that has fallen due and not been recorded yet: from its deadline a
    referral still in one of the row's source states *is* closed (JFS 3.40: cancelled as
    did-not-attend from ``auto_dna_on``; JFS 5.08: ended with code 45 from ``auto_end_on``),
    whether or not the daily job has run."""
    status = ReferralStatus(referral.status)
    for transition in SYSTEM_TRANSITIONS:
        assert transition.deadline is not None
        due_on: date | None = getattr(referral, transition.deadline)
        if status in transition.sources and due_on is not None and due_on <= today:
            return transition.action
    return None
