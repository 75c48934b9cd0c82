"""The referral state machine: one table that drives everything (domain.md §4).

Enforcement (409 ``invalid-transition``), the ``allowed_actions`` list on each
representation, the role each endpoint admits, the documentation and the exhaustive tests
all read ``TRANSITIONS``. Nothing else decides which action may follow which state.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.auth import Scope
from app.referrals.states import ActorRole, EventType, ReferralAction, ReferralStatus

S = ReferralStatus
A = ReferralAction


@dataclass(frozen=True, slots=True)
class Transition:
    action: ReferralAction
    sources: frozenset[ReferralStatus]
    target: ReferralStatus
    actor: ActorRole
    event: EventType
    # JFS 3.37-3.38, SES 3.15: after POST backs out a start, the provider must cancel with
    # "did not start"; until then that is the only provider action allowed.
    allowed_after_back_out: bool = False
    reference: str = ""

    @property
    def scope(self) -> Scope | None:
        """The provider scope the action needs (domain.md §1)."""
        return Scope.referrals if self.actor is ActorRole.provider else None

    @property
    def closes(self) -> bool:
        return self.target.is_terminal


def _t(
    action: ReferralAction,
    sources: set[ReferralStatus],
    target: ReferralStatus,
    actor: ActorRole,
    event: EventType,
    reference: str,
    *,
    after_back_out: bool = False,
) -> Transition:
    return Transition(action, frozenset(sources), target, actor, event, after_back_out, reference)


PROVIDER = ActorRole.provider

# fmt: off
TRANSITIONS: dict[ReferralAction, Transition] = {
    t.action: t
    for t in (
        _t(A.acknowledge, {S.referred}, S.acknowledged, PROVIDER, EventType.acknowledged,
           "JFS 3.07"),
        _t(A.accept, {S.referred, S.acknowledged}, S.accepted, PROVIDER, EventType.accepted,
           "JFS 3.08"),
        _t(A.reject, {S.referred, S.acknowledged}, S.rejected, PROVIDER, EventType.rejected,
           "JFS 3.35-3.36, SES 3.8-3.13"),
        _t(A.cancel, {S.acknowledged, S.accepted}, S.cancelled, PROVIDER, EventType.cancelled,
           "JFS annex 2, SES 3.14", after_back_out=True),
        _t(A.did_not_attend, {S.acknowledged, S.accepted}, S.cancelled, PROVIDER,
           EventType.did_not_attend, "JFS 3.33-3.34"),
        _t(A.did_not_start, {S.acknowledged, S.accepted}, S.cancelled, PROVIDER,
           EventType.did_not_start, "JFS 3.31-3.32, 3.37", after_back_out=True),
        _t(A.start, {S.accepted}, S.started, PROVIDER, EventType.started, "JFS 3.27, annex 3"),
        _t(A.end, {S.started}, S.ended, PROVIDER, EventType.ended, "JFS annex 2"),
        _t(A.back_out, {S.started}, S.accepted, ActorRole.post, EventType.backed_out,
           "SES 3.15, JFS 3.37-3.38"),
        _t(A.auto_dna, {S.referred, S.acknowledged, S.accepted}, S.cancelled, ActorRole.system,
           EventType.auto_did_not_attend, "JFS 3.40"),
        _t(A.auto_end, {S.started}, S.ended, ActorRole.system, EventType.auto_ended, "JFS 5.08"),
    )
}
# fmt: on

# The actions a person can ask for over HTTP (the system's own run as jobs).
HTTP_ACTIONS = tuple(a for a, t in TRANSITIONS.items() if t.actor is not ActorRole.system)


def transition_for(action: ReferralAction) -> Transition:
    return TRANSITIONS[action]


def state_allows(action: ReferralAction, status: ReferralStatus, *, back_out_pending: bool) -> bool:
    """Whether ``action`` may follow ``status`` (roles and time rules aside)."""
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        return False
    if back_out_pending and transition.actor is ActorRole.provider:
        return transition.allowed_after_back_out
    return True
