"""The claim state machine: one table that every change of a claim's status reads
(domain.md §8).

Validation and rejection (claims), payment in a run (payments) and voiding on a back-out
(SES 3.15) all take their source states, target state, event and actor from ``TRANSITIONS``,
and so do the SQL status lists: the partial unique index on live claims
(``LIVE_CLAIMS_SQL``), the payment run's conditional UPDATE and the recovery of voided
claims. Nothing else decides which status may follow which.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from app.claims.states import ClaimEventType, ClaimStatus
from app.referrals.states import ActorRole

S = ClaimStatus

# domain.md §8: a provider submits; every claim starts here (submission is not a transition).
INITIAL_STATUS = S.submitted


class ClaimAction(enum.StrEnum):
    validate = "validate"
    reject = "reject"
    pay = "pay"
    void = "void"


A = ClaimAction


@dataclass(frozen=True, slots=True)
class ClaimTransition:
    action: ClaimAction
    sources: frozenset[ClaimStatus]
    target: ClaimStatus
    event: ClaimEventType
    actor: ActorRole
    reference: str

    def allows(self, status: str) -> bool:
        return status in self.sources

    @property
    def sources_in_order(self) -> tuple[ClaimStatus, ...]:
        """The source states in declaration order: a stable order for SQL and messages."""
        return tuple(s for s in ClaimStatus if s in self.sources)


def _t(
    action: ClaimAction,
    sources: set[ClaimStatus],
    target: ClaimStatus,
    event: ClaimEventType,
    actor: ActorRole,
    reference: str,
) -> ClaimTransition:
    return ClaimTransition(action, frozenset(sources), target, event, actor, reference)


POST = ActorRole.post

# fmt: off
TRANSITIONS: dict[ClaimAction, ClaimTransition] = {
    t.action: t
    for t in (
        _t(A.validate, {S.submitted}, S.validated, ClaimEventType.validated, POST,
           "domain.md §8"),
        _t(A.reject, {S.submitted}, S.rejected, ClaimEventType.rejected, POST,
           "domain.md §8"),
        # JFS 6.01-6.03: a payment run pays every validated, unpaid claim once.
        _t(A.pay, {S.validated}, S.paid, ClaimEventType.paid, POST, "JFS 6.01-6.03"),
        # SES 3.15: backing out a start voids its attachment claim, paid or not; a paid one
        # is recovered by the next run (domain.md §8).
        _t(A.void, {S.submitted, S.validated, S.paid}, S.voided, ClaimEventType.voided, POST,
           "SES 3.15, domain.md §8"),
    )
}
# fmt: on


def transition_for(action: ClaimAction) -> ClaimTransition:
    return TRANSITIONS[action]


# Where a claim ends without being paid: rejected or voided. Such a claim no longer stands.
ENDING_ACTIONS = (A.reject, A.void)


def _reachable(
    start: ClaimStatus, *, excluding: tuple[ClaimAction, ...]
) -> tuple[ClaimStatus, ...]:
    found = {start}
    changed = True
    while changed:
        changed = False
        for transition in TRANSITIONS.values():
            if transition.action in excluding or transition.target in found:
                continue
            if transition.sources & found:
                found.add(transition.target)
                changed = True
    return tuple(s for s in ClaimStatus if s in found)


# A claim still standing: submitted, or on its way to payment (domain.md §8: one of each type
# per referral; rejected and voided ones are not).
LIVE_CLAIM_STATUSES = _reachable(INITIAL_STATUS, excluding=ENDING_ACTIONS)
# A job outcome counts for sustainment once validated, and still once paid (PRaP 11).
VALIDATED_STATUSES = _reachable(TRANSITIONS[A.validate].target, excluding=ENDING_ACTIONS)


def status_in_sql(statuses: tuple[ClaimStatus, ...]) -> str:
    """A ``status IN (...)`` predicate for a partial index. Only this table's constants."""
    return "status IN (" + ", ".join(f"'{s}'" for s in statuses) + ")"


# The partial unique index's predicate: the text must stay as migration 0004 created it
# (``alembic check`` and the migration tests compare).
LIVE_CLAIMS_SQL = status_in_sql(LIVE_CLAIM_STATUSES)
