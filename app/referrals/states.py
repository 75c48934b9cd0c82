"""The referral's vocabulary: states, actions, reasons and end codes (domain.md §4, JFS annex 2)."""

from __future__ import annotations

import enum


class ReferralStatus(enum.StrEnum):
    referred = "referred"
    acknowledged = "acknowledged"
    accepted = "accepted"
    started = "started"
    ended = "ended"
    rejected = "rejected"
    cancelled = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES

    @property
    def is_open(self) -> bool:
        """Open for JFS 5.19: not yet rejected, cancelled or ended."""
        return self not in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {ReferralStatus.ended, ReferralStatus.rejected, ReferralStatus.cancelled}
)


class ReferralAction(enum.StrEnum):
    acknowledge = "acknowledge"
    accept = "accept"
    reject = "reject"
    cancel = "cancel"
    did_not_attend = "did-not-attend"
    did_not_start = "did-not-start"
    start = "start"
    end = "end"
    back_out = "back-out"
    auto_dna = "auto-dna"
    auto_end = "auto-end"


class CallerAction(enum.StrEnum):
    """The actions a caller can take over HTTP: ``ReferralAction`` without the service's own
    (``auto-dna``, ``auto-end``), which no caller can ask for. ``allowed_actions`` lists
    these, so a generated client never offers an action it cannot send. A test checks it
    agrees with the transition table."""

    acknowledge = "acknowledge"
    accept = "accept"
    reject = "reject"
    cancel = "cancel"
    did_not_attend = "did-not-attend"
    did_not_start = "did-not-start"
    start = "start"
    end = "end"
    back_out = "back-out"


class EventType(enum.StrEnum):
    created = "created"
    acknowledged = "acknowledged"
    accepted = "accepted"
    rejected = "rejected"
    cancelled = "cancelled"
    did_not_attend = "did_not_attend"
    did_not_start = "did_not_start"
    started = "started"
    ended = "ended"
    backed_out = "backed_out"
    auto_did_not_attend = "auto_did_not_attend"
    auto_ended = "auto_ended"
    # JFS 4.23-4.24: a change of circumstances (not a transition: the status stays).
    participant_changed = "participant_changed"
    # GEN 136, JFS 1.33: the participant's personal data was erased (on request, or at the
    # end of the contract's records retention).
    erased = "erased"


class ActorRole(enum.StrEnum):
    """Who acted: the token roles plus the service itself."""

    jcp = "jcp"
    provider = "provider"
    post = "post"
    admin = "admin"
    system = "system"


class RejectionReason(enum.StrEnum):
    """JFS 3.35-3.36, SES 3.8-3.13."""

    duplicate = "duplicate"
    inappropriate = "inappropriate"
    not_suitable = "not_suitable"
    other = "other"


class CancellationReason(enum.StrEnum):
    """JFS annex 2, SES 3.14."""

    no_contact = "no_contact"
    did_not_attend = "did_not_attend"
    did_not_start = "did_not_start"


class ClosedBy(enum.StrEnum):
    provider = "provider"
    system = "system"


class EndCode(enum.IntEnum):
    """Programme leaver codes (JFS annex 2)."""

    found_work = 1
    no_longer_engaged = 36
    no_longer_eligible = 37
    completed_provision = 39
    customer_deceased = 43
    end_of_allotted_time = 45
    exceptional_circumstances = 46


# End codes a provider may only use on the policy team's advice (JFS annex 2).
END_CODES_NEEDING_POLICY_REFERENCE = frozenset(
    {EndCode.no_longer_eligible, EndCode.exceptional_circumstances}
)
# Set by the service only (JFS 5.08).
SYSTEM_ONLY_END_CODES = frozenset({EndCode.end_of_allotted_time})
# A participation that ended with these may not be re-referred (JFS 3.42, 5.16).
END_CODES_BARRING_RE_REFERRAL = frozenset(
    {EndCode.completed_provision, EndCode.end_of_allotted_time}
)
