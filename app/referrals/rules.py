"""Referral rules as pure functions of data and a clock (domain.md §2-§5).

No I/O here: each function reads a referral's facts and the request, and either returns what
changes or raises the problem the API answers with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from app.core.calendar import acknowledgement_due, nth_working_day_after
from app.core.clock import Clock, uk_date
from app.core.problems import (
    AcknowledgementWindowClosed,
    DateOutOfRange,
    EndCodeAutomatedOnly,
    ExclusiveProgramme,
    InvalidTransition,
    MappaContactDetails,
    OpenReferralExists,
    PolicyReferenceRequired,
    ProblemError,
    ReReferralNotAllowed,
)
from app.programmes.schemas import AllottedFrom
from app.referrals.states import (
    END_CODES_BARRING_RE_REFERRAL,
    END_CODES_NEEDING_POLICY_REFERENCE,
    SYSTEM_ONLY_END_CODES,
    CancellationReason,
    ClosedBy,
    EndCode,
    ReferralStatus,
)

# HMRC's NINO format: prefix letters (first not D F I Q U V; second not D F I O Q U V;
# BG GB KN NK NT TN ZZ never allocated), six digits, suffix A-D.
_FIRST_LETTERS = "ABCEGHJKLMNOPRSTWXYZ"
_SECOND_LETTERS = "ABCEGHJKLMNPRSTWXYZ"
_NEVER_ALLOCATED = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def _either_case(letters: str) -> str:
    return "[" + "".join(c + c.lower() for c in letters) + "]"


def _nino_pattern() -> str:
    """HMRC's format as one regular expression without look-arounds, so that the OpenAPI
    document can state it (JSON Schema ``pattern``) and generated clients and fuzzers apply
    exactly what the server does: either case, spaces anywhere."""
    by_seconds: dict[str, str] = {}
    for first in _FIRST_LETTERS:
        seconds = "".join(s for s in _SECOND_LETTERS if first + s not in _NEVER_ALLOCATED)
        by_seconds[seconds] = by_seconds.get(seconds, "") + first
    prefixes = "|".join(
        f"{_either_case(firsts)} *{_either_case(seconds)}" for seconds, firsts in by_seconds.items()
    )
    return "^ *(?:" + prefixes + ")" + " *[0-9]" * 6 + " *[A-Da-d] *$"


NINO_PATTERN = _nino_pattern()
_NINO = re.compile(NINO_PATTERN)

# SES 3.15, JFS 3.37-3.38: the provider cancels within 24 hours of a back-out.
BACK_OUT_CANCEL_WINDOW = timedelta(hours=24)

MAPPA_NOTICE = (
    "MAPPA case: further information is held by the provider's nominated officer "
    "(SES 3.37, GEN 88-90)."
)


def normalise_nino(value: str) -> str:
    return "".join(value.split()).upper()


def is_valid_nino(value: str) -> bool:
    return bool(_NINO.match(value))


class ReferralFacts(Protocol):
    """What the rules read of a referral (the ORM model satisfies it)."""

    @property
    def status(self) -> str: ...
    @property
    def referral_date(self) -> date: ...
    @property
    def acknowledgement_due(self) -> date: ...
    @property
    def acknowledged_at(self) -> datetime | None: ...
    @property
    def start_date(self) -> date | None: ...
    @property
    def start_backed_out_at(self) -> datetime | None: ...
    @property
    def outcome_recorded_on(self) -> date | None: ...


class PriorReferral(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def end_code(self) -> int | None: ...
    @property
    def re_referral(self) -> bool: ...
    @property
    def start_date(self) -> date | None: ...
    @property
    def end_date(self) -> date | None: ...


def back_out_pending(referral: ReferralFacts) -> bool:
    """A start was backed out and the provider has not yet cancelled (JFS 3.37)."""
    return referral.start_backed_out_at is not None and referral.status == ReferralStatus.accepted


def cancel_overdue(referral: ReferralFacts, clock: Clock) -> bool:
    """The did-not-start cancel is more than 24 hours late (a compliance flag only)."""
    return (
        back_out_pending(referral)
        and referral.start_backed_out_at is not None
        and clock.now > referral.start_backed_out_at + BACK_OUT_CANCEL_WINDOW
    )


def acknowledged_in_time(referral: ReferralFacts, today: date) -> bool:
    """JFS 3.07-3.08: acknowledged (or acknowledgeable still) by the deadline."""
    if referral.acknowledged_at is not None:
        return uk_date(referral.acknowledged_at) <= referral.acknowledgement_due
    return today <= referral.acknowledgement_due


def acknowledgement_deadline(referral_date: date, working_days: int) -> date:
    return acknowledgement_due(referral_date, working_days)


def working_day_deadline(referral_date: date, working_days: int | None) -> date | None:
    """CSS deadlines: the N-th working day after the referral date (domain.md §3, §9)."""
    return None if working_days is None else nth_working_day_after(referral_date, working_days)


# --- the time rules an action's row in the transition table may name ----------------------


@dataclass(frozen=True, slots=True)
class TimeRule:
    """A guard that reads the referral and today, and the problem it answers when it fails."""

    holds: Callable[[ReferralFacts, date], bool]
    problem: type[ProblemError]

    def check(self, referral: ReferralFacts, today: date) -> None:
        if not self.holds(referral, today):
            raise self.problem()


# JFS 3.07-3.08: acknowledging only until the deadline; accepting and starting refused for a
# referral not acknowledged in time.
ACKNOWLEDGEMENT_WINDOW = TimeRule(acknowledged_in_time, AcknowledgementWindowClosed)


def _in_range(value: date, low: date, high: date, what: str) -> None:
    if value < low:
        raise DateOutOfRange(f"{what} is before {low.isoformat()}.")
    if value > high:
        raise DateOutOfRange(f"{what} is after {high.isoformat()}.")


@dataclass(frozen=True, slots=True)
class Change:
    """What an action writes: the referral's new field values and the event's data."""

    fields: dict[str, Any]
    event_data: dict[str, Any] = field(default_factory=dict)


def acknowledge(clock: Clock) -> Change:
    return Change({"status": ReferralStatus.acknowledged, "acknowledged_at": clock.now})


def accept(referral: ReferralFacts, clock: Clock) -> Change:
    # Accepting also acknowledges (domain.md §4).
    return Change(
        {
            "status": ReferralStatus.accepted,
            "accepted_at": clock.now,
            "acknowledged_at": referral.acknowledged_at or clock.now,
        }
    )


def _outcome_recorded(referral: ReferralFacts, clock: Clock) -> dict[str, Any]:
    """CSS 2 (JFS 3.27, 7.44) counts when a start, DNA or DNS was first recorded."""
    if referral.outcome_recorded_on is not None:
        return {}
    return {"outcome_recorded_on": clock.today}


def _close(
    status: ReferralStatus, clock: Clock, by: ClosedBy = ClosedBy.provider, **fields: Any
) -> dict[str, Any]:
    return {"status": status, "closed_by": by, "closed_at": clock.now, **fields}


def reject(clock: Clock, reason: str, note: str | None) -> Change:
    return Change(
        _close(ReferralStatus.rejected, clock, rejection_reason=reason),
        {"reason": reason, "note": note},
    )


def cancel(
    referral: ReferralFacts,
    clock: Clock,
    reason: CancellationReason,
    note: str | None,
    initial_meeting_date: date | None = None,
) -> Change:
    if back_out_pending(referral) and reason is not CancellationReason.did_not_start:
        # JFS 3.37: after a back-out only the "did not start" cancel is allowed.
        raise InvalidTransition(
            "The start was backed out: the referral must be cancelled as did_not_start."
        )
    fields = _close(ReferralStatus.cancelled, clock, cancellation_reason=reason)
    if reason is not CancellationReason.no_contact:
        fields |= _outcome_recorded(referral, clock)
    data: dict[str, Any] = {"reason": str(reason), "note": note}
    if initial_meeting_date is not None:
        # JFS 3.31-3.32: attended the initial meeting but did not start.
        _in_range(initial_meeting_date, referral.referral_date, clock.today, "initial_meeting_date")
        fields["initial_meeting_date"] = initial_meeting_date
        data["initial_meeting_date"] = initial_meeting_date.isoformat()
    return Change(fields, data)


def allotted_time_ends(
    referral_date: date, start_date: date, allotted_days: int, allotted_from: AllottedFrom
) -> date:
    """JFS 5.08: the day provision ends by itself (code 45). The allotted time runs from the
    start date, but for CWP from the original referral date: "the expected end date which is
    30 weeks after the original referral date" (HTW 115, 159, 162)."""
    origin = referral_date if allotted_from is AllottedFrom.referral_date else start_date
    return origin + timedelta(days=allotted_days)


def start(
    referral: ReferralFacts,
    clock: Clock,
    start_date: date,
    provider_reference: str | None,
    allotted_days: int,
    allotted_from: AllottedFrom = AllottedFrom.start_date,
) -> Change:
    # JFS 3.27, annex 3: the start date is the initial meeting date; recorded retrospectively
    # if need be, never before the referral nor in the future.
    _in_range(start_date, referral.referral_date, clock.today, "start_date")
    return Change(
        {
            "status": ReferralStatus.started,
            "start_date": start_date,
            "initial_meeting_date": start_date,
            "provider_reference": provider_reference,
            # JFS 5.08: provision ends by itself when the allotted time has run.
            "auto_end_on": allotted_time_ends(
                referral.referral_date, start_date, allotted_days, allotted_from
            ),
            **_outcome_recorded(referral, clock),
        },
        {"start_date": start_date.isoformat(), "provider_reference": provider_reference},
    )


def end(
    referral: ReferralFacts,
    clock: Clock,
    end_code: EndCode,
    end_date: date,
    last_engagement_date: date,
    policy_reference: str | None,
) -> Change:
    if end_code in SYSTEM_ONLY_END_CODES:
        raise EndCodeAutomatedOnly()
    # A reference of blanks only is no reference (domain.md §4).
    if end_code in END_CODES_NEEDING_POLICY_REFERENCE and not (policy_reference or "").strip():
        raise PolicyReferenceRequired()
    assert referral.start_date is not None
    # JFS annex 2: start ≤ last engagement ≤ end ≤ today.
    _in_range(last_engagement_date, referral.start_date, clock.today, "last_engagement_date")
    _in_range(end_date, last_engagement_date, clock.today, "end_date")
    return Change(
        _close(
            ReferralStatus.ended,
            clock,
            end_code=int(end_code),
            end_date=end_date,
            last_engagement_date=last_engagement_date,
            policy_reference=policy_reference,
        ),
        {
            "end_code": int(end_code),
            "end_date": end_date.isoformat(),
            "last_engagement_date": last_engagement_date.isoformat(),
            "policy_reference": policy_reference,
        },
    )


def back_out(referral: ReferralFacts, clock: Clock, reason: str) -> Change:
    """SES 3.15, JFS 3.37-3.38: POST backs out a start recorded in error; the provider must
    then cancel as "did not start" within 24 hours."""
    start_date = referral.start_date
    return Change(
        {
            "status": ReferralStatus.accepted,
            "start_date": None,
            "initial_meeting_date": None,
            "auto_end_on": None,
            # The start was recorded in error: CSS 2 waits for the did-not-start that follows.
            "outcome_recorded_on": None,
            "start_backed_out_at": clock.now,
        },
        {
            "reason": reason,
            "backed_out_start_date": start_date.isoformat() if start_date else None,
            "cancel_due_by": (clock.now + BACK_OUT_CANCEL_WINDOW).isoformat(),
        },
    )


# --- the automatic deadlines, on every path (JFS 3.40, 5.08; domain.md §4) -----------------


class DeadlineFacts(ReferralFacts, Protocol):
    @property
    def auto_dna_on(self) -> date: ...
    @property
    def auto_end_on(self) -> date | None: ...


def auto_did_not_attend(clock: Clock, as_of: date) -> Change:
    """JFS 3.40: on its ``auto_dna_on`` day a referral nobody started is cancelled as did not
    attend, by the system (the daily job, or the first path to read it)."""
    return Change(
        _close(
            ReferralStatus.cancelled,
            clock,
            ClosedBy.system,
            cancellation_reason=CancellationReason.did_not_attend,
        ),
        {"reason": str(CancellationReason.did_not_attend), "as_of": as_of.isoformat()},
    )


def auto_end(auto_end_on: Any, clock: Clock, as_of: date) -> Change:
    """JFS 5.08: on its ``auto_end_on`` day a started referral ends with code 45, that day
    being its end date. ``auto_end_on`` is the day, or the column itself when the daily job
    writes the change set-based."""
    code = int(EndCode.end_of_allotted_time)
    return Change(
        _close(ReferralStatus.ended, clock, ClosedBy.system, end_code=code, end_date=auto_end_on),
        {"end_code": code, "as_of": as_of.isoformat()},
    )


# --- changes of circumstances (JFS 4.23-4.24, domain.md §5a) -------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: an object patch merges member by member (null removes); anything else
    replaces the target."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = merge_patch(merged.get(name), value)
    return merged


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names of the participant's fields that differ: the event names them, never their
    values (personal data)."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def check_participant_changeable(referral: ReferralFacts) -> None:
    """domain.md §5a: a closed referral cannot be changed."""
    if ReferralStatus(referral.status).is_terminal:
        raise InvalidTransition("The referral is closed: its participant cannot be changed.")


# --- creating a referral -------------------------------------------------------------------


def check_mappa(mappa: bool, contact_details_present: bool) -> None:
    """SES 3.32: MAPPA referrals arrive without address, postcode or telephone numbers."""
    if mappa and contact_details_present:
        raise MappaContactDetails()


def reached_maximum_duration(prior: PriorReferral, max_duration_working_days: int) -> bool:
    """JFS 5.16, 1.23 (reading, domain.md §5): the earlier participation's end date is on or
    after the N-th working day after its start date, or it ran out its allotted time."""
    if prior.end_code == EndCode.end_of_allotted_time:
        return True
    if prior.start_date is None or prior.end_date is None:
        return False
    return prior.end_date >= nth_working_day_after(prior.start_date, max_duration_working_days)


def check_exclusive_programmes(open_elsewhere: Sequence[str], exclusive: frozenset[str]) -> None:
    """HTW 70: "claimants allocated to CWP must no longer be considered for referral to other
    provision": an open referral on an exclusive programme bars referrals to the others."""
    if any(code in exclusive for code in open_elsewhere):
        raise ExclusiveProgramme()


def classify_new_referral(
    prior: Sequence[PriorReferral],
    max_re_referrals: int,
    max_duration_working_days: int | None = None,
) -> bool:
    """Whether a new referral is a re-referral, or raise why it may not be made.

    JFS 5.19: no second open referral on the programme. JFS annex 3: a re-referral is a
    referral of someone who has started before (every ended referral had a start). JFS 3.42,
    5.16: allowed only where the programme allows, once, and not after code 39 or 45, nor
    after the programme's maximum duration was reached (JFS 5.16, 1.23).
    """
    if any(ReferralStatus(p.status).is_open for p in prior):
        raise OpenReferralExists()
    participations = [p for p in prior if p.status == ReferralStatus.ended]
    if not participations:
        return False
    re_referrals_so_far = sum(1 for p in prior if p.re_referral)
    barred = any(p.end_code in END_CODES_BARRING_RE_REFERRAL for p in participations)
    if max_duration_working_days is not None:
        barred = barred or any(
            reached_maximum_duration(p, max_duration_working_days) for p in participations
        )
    if barred or re_referrals_so_far >= max_re_referrals:
        raise ReReferralNotAllowed()
    return True
