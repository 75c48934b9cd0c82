"""The referral transition table and vocabulary as data (app/referrals/transitions.py,
states.py; domain.md §4). No app, no database."""

from __future__ import annotations

import pytest

from app.core.auth import Scope
from app.referrals.states import (
    END_CODES_BARRING_RE_REFERRAL,
    END_CODES_NEEDING_POLICY_REFERENCE,
    SYSTEM_ONLY_END_CODES,
    TERMINAL_STATES,
    ActorRole,
    EndCode,
    ReferralAction,
    ReferralStatus,
)
from app.referrals.transitions import HTTP_ACTIONS, TRANSITIONS, state_allows, transition_for

pytestmark = pytest.mark.pure

S = ReferralStatus
A = ReferralAction

# domain.md §4, the lifecycle table, written out once more by hand: (sources, target, by).
LIFECYCLE = {
    A.acknowledge: ({S.referred}, S.acknowledged, ActorRole.provider),
    A.accept: ({S.referred, S.acknowledged}, S.accepted, ActorRole.provider),
    A.reject: ({S.referred, S.acknowledged}, S.rejected, ActorRole.provider),
    A.cancel: ({S.acknowledged, S.accepted}, S.cancelled, ActorRole.provider),
    A.did_not_attend: ({S.acknowledged, S.accepted}, S.cancelled, ActorRole.provider),
    A.did_not_start: ({S.acknowledged, S.accepted}, S.cancelled, ActorRole.provider),
    A.start: ({S.accepted}, S.started, ActorRole.provider),
    A.end: ({S.started}, S.ended, ActorRole.provider),
    A.back_out: ({S.started}, S.accepted, ActorRole.post),
    A.auto_dna: ({S.referred, S.acknowledged, S.accepted}, S.cancelled, ActorRole.system),
    A.auto_end: ({S.started}, S.ended, ActorRole.system),
}


def test_table_matches_the_domain_lifecycle_domain_4() -> None:
    """domain.md §4: every action, its sources, its result and who may ask for it."""
    assert set(TRANSITIONS) == set(A)
    for action, (sources, target, actor) in LIFECYCLE.items():
        transition = transition_for(action)
        assert transition.action is action
        assert transition.sources == sources, action
        assert transition.target is target, action
        assert transition.actor is actor, action
        assert transition.reference, f"{action} cites no paragraph"


def test_terminal_states_have_no_way_out_domain_4() -> None:
    """domain.md §4: rejected, cancelled and ended are terminal."""
    assert {S.rejected, S.cancelled, S.ended} == TERMINAL_STATES
    for transition in TRANSITIONS.values():
        assert not (transition.sources & TERMINAL_STATES), transition.action
        assert transition.closes is transition.target.is_terminal


def test_open_is_the_complement_of_terminal_jfs_5_19() -> None:
    """JFS 5.19: open means not yet rejected, cancelled or ended."""
    for status in S:
        assert status.is_open is not status.is_terminal


def test_every_state_is_reachable_from_referred_domain_4() -> None:
    reached = {S.referred}
    frontier = [S.referred]
    while frontier:
        status = frontier.pop()
        for transition in TRANSITIONS.values():
            if status in transition.sources and transition.target not in reached:
                reached.add(transition.target)
                frontier.append(transition.target)
    assert reached == set(S)


def test_http_actions_are_the_people_s_actions_domain_1() -> None:
    """domain.md §1, §6: the system's own actions (auto DNA, auto end) run as jobs only."""
    assert set(HTTP_ACTIONS) == set(A) - {A.auto_dna, A.auto_end}


def test_provider_actions_need_the_referrals_scope_domain_1() -> None:
    """domain.md §1: delivery staff need the ``referrals`` scope; POST and the system none."""
    for transition in TRANSITIONS.values():
        expected = Scope.referrals if transition.actor is ActorRole.provider else None
        assert transition.scope is expected, transition.action


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("action", list(A))
def test_state_allows_without_back_out_is_membership_domain_4(status: S, action: A) -> None:
    assert state_allows(action, status, back_out_pending=False) is (status in LIFECYCLE[action][0])


@pytest.mark.parametrize("action", list(A))
def test_after_back_out_only_did_not_start_cancels_for_providers_jfs_3_37(action: A) -> None:
    """JFS 3.37-3.38, SES 3.15: after a back-out the provider may only cancel (as did not
    start); the system's auto DNA still closes it at 30 days (JFS 3.40)."""
    allowed = state_allows(action, S.accepted, back_out_pending=True)
    assert allowed is (action in {A.cancel, A.did_not_start, A.auto_dna})


def test_end_code_sets_jfs_annex_2() -> None:
    """JFS annex 2, 5.08, 3.42: 45 is the system's; 37 and 46 need a policy reference;
    39 and 45 bar a re-referral."""
    assert {EndCode.end_of_allotted_time} == SYSTEM_ONLY_END_CODES
    assert {EndCode(37), EndCode(46)} == END_CODES_NEEDING_POLICY_REFERENCE
    assert {EndCode(39), EndCode(45)} == END_CODES_BARRING_RE_REFERRAL
    assert sorted(int(c) for c in EndCode) == [1, 36, 37, 39, 43, 45, 46]
