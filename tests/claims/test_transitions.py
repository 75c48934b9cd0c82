"""The claim state table (app/claims/transitions.py; domain.md §8, SES 3.15), exhaustively:
every (state, action) pair, and the status lists derived from it. No app, no database."""

from __future__ import annotations

import itertools

import pytest

from app.claims.states import ClaimEventType, ClaimStatus
from app.claims.transitions import (
    INITIAL_STATUS,
    LIVE_CLAIM_STATUSES,
    LIVE_CLAIMS_SQL,
    TRANSITIONS,
    VALIDATED_STATUSES,
    ClaimAction,
    status_in_sql,
    transition_for,
)
from app.referrals.states import ActorRole

pytestmark = pytest.mark.pure

S = ClaimStatus
A = ClaimAction

# domain.md §8, written out independently of the table: submitted → validated | rejected;
# validated → paid; voided on a back-out from any state still standing (SES 3.15).
EXPECTED: dict[tuple[ClaimStatus, ClaimAction], ClaimStatus] = {
    (S.submitted, A.validate): S.validated,
    (S.submitted, A.reject): S.rejected,
    (S.validated, A.pay): S.paid,
    (S.submitted, A.void): S.voided,
    (S.validated, A.void): S.voided,
    (S.paid, A.void): S.voided,
}


@pytest.mark.parametrize(("status", "action"), list(itertools.product(S, A)))
def test_every_state_and_action_pair_domain_8(status: ClaimStatus, action: ClaimAction) -> None:
    transition = transition_for(action)
    expected = EXPECTED.get((status, action))
    assert transition.allows(status) is (expected is not None)
    if expected is not None:
        assert transition.target is expected


def test_every_action_has_one_row_with_its_event_actor_and_reference() -> None:
    assert set(TRANSITIONS) == set(ClaimAction)
    for action, transition in TRANSITIONS.items():
        assert transition.action is action
        assert transition.event == ClaimEventType(transition.target)
        assert transition.actor is ActorRole.post
        assert transition.reference
        assert transition.sources


def test_claims_start_submitted_and_the_end_states_lead_nowhere() -> None:
    assert INITIAL_STATUS is S.submitted
    sources = set().union(*(t.sources for t in TRANSITIONS.values()))
    assert INITIAL_STATUS not in {t.target for t in TRANSITIONS.values()}
    assert {S.rejected, S.voided}.isdisjoint(sources)


def test_every_status_is_reachable_from_submitted() -> None:
    reached = {INITIAL_STATUS}
    for _ in ClaimStatus:
        reached |= {t.target for t in TRANSITIONS.values() if t.sources & reached}
    assert reached == set(ClaimStatus)


def test_live_statuses_are_those_a_back_out_voids_domain_8() -> None:
    """One live claim of each type per referral; a back-out voids a live attachment claim."""
    assert (S.submitted, S.validated, S.paid) == LIVE_CLAIM_STATUSES
    assert set(LIVE_CLAIM_STATUSES) == TRANSITIONS[A.void].sources
    assert (S.validated, S.paid) == VALIDATED_STATUSES


def test_the_partial_index_predicate_is_the_text_migration_0004_created() -> None:
    assert LIVE_CLAIMS_SQL == "status IN ('submitted', 'validated', 'paid')"
    assert status_in_sql((S.paid,)) == "status IN ('paid')"


def test_sources_in_order_follow_the_vocabulary() -> None:
    for transition in TRANSITIONS.values():
        ordered = transition.sources_in_order
        assert set(ordered) == transition.sources
        assert list(ordered) == sorted(ordered, key=list(ClaimStatus).index)
