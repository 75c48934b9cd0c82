"""The referral rules as pure functions (app/referrals/rules.py; domain.md §2-§5).

No app, no database: each rule is called with plain facts and a fixed clock. The HTTP tests
show the wiring; these show every branch.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.calendar import acknowledgement_due, nth_working_day_after
from app.core.clock import Clock
from app.core.problems import (
    AcknowledgementWindowClosed,
    DateOutOfRange,
    EndCodeAutomatedOnly,
    InvalidTransition,
    MappaContactDetails,
    OpenReferralExists,
    PolicyReferenceRequired,
    ReReferralNotAllowed,
)
from app.referrals import rules, transitions
from app.referrals.states import (
    CancellationReason,
    ClosedBy,
    EndCode,
    ReferralAction,
    ReferralStatus,
)
from app.referrals.transitions import TRANSITIONS

pytestmark = pytest.mark.pure
# Hypothesis runs here without its per-example deadline: a loaded machine (or the holidays
# package building a year on first use) would make it a timed assertion.

S = ReferralStatus
A = ReferralAction

# Monday 2 March 2026, 10:00 UK (GMT): acknowledgement due Tuesday 3 March (JFS 3.07).
REFERRAL_DATE = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLOCK = Clock.at(NOW)


@dataclass(frozen=True)
class Facts:
    """A referral's facts as the rules read them (``rules.ReferralFacts``)."""

    status: str = S.referred
    referral_date: date = REFERRAL_DATE
    acknowledgement_due: date = date(2026, 3, 3)
    acknowledged_at: datetime | None = None
    start_date: date | None = None
    start_backed_out_at: datetime | None = None
    outcome_recorded_on: date | None = None


@dataclass(frozen=True)
class Prior:
    """An earlier referral of the same participant on the same programme."""

    status: str
    end_code: int | None = None
    re_referral: bool = False


def at(day: date, hour: int = 10) -> Clock:
    return Clock.at(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


# --- NINO (domain.md §5, HMRC format) ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("AB123456C", True),
        ("ab 12 34 56 c", True),  # case and spaces normalised
        ("  hj135792d ", True),
        ("DA123456A", False),  # first letter not D
        ("FA123456A", False),
        ("IA123456A", False),
        ("QA123456A", False),
        ("UA123456A", False),
        ("VA123456A", False),
        ("AO123456A", False),  # second letter not O
        ("AD123456A", False),
        ("BG123456A", False),  # prefixes never allocated
        ("GB123456A", False),
        ("KN123456A", False),
        ("NK123456A", False),
        ("NT123456A", False),
        ("TN123456A", False),
        ("ZZ123456A", False),
        ("AB123456E", False),  # suffix A-D
        ("AB12345C", False),  # six digits
        ("AB1234567C", False),
        ("", False),
    ],
)
def test_nino_format_domain_5(raw: str, valid: bool) -> None:
    """domain.md §5: HMRC's NINO format, normalised for case and spaces."""
    assert rules.is_valid_nino(raw) is valid


@settings(deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + " \t", max_size=20))
def test_normalise_nino_is_idempotent_and_blank_free_domain_5(raw: str) -> None:
    """domain.md §5: normalising twice changes nothing; no blanks and no lower case remain."""
    once = rules.normalise_nino(raw)
    assert rules.normalise_nino(once) == once
    assert not any(c.isspace() for c in once)
    assert once == once.upper()


# --- back-out pending and cancel overdue (SES 3.15, JFS 3.37-3.38) -------------------------


def test_back_out_pending_only_while_accepted_after_a_back_out_jfs_3_37() -> None:
    """JFS 3.37: after a back-out the referral is accepted again until the provider cancels."""
    backed_out = Facts(status=S.accepted, start_backed_out_at=NOW)
    assert rules.back_out_pending(backed_out)
    assert not rules.back_out_pending(replace(backed_out, start_backed_out_at=None))
    assert not rules.back_out_pending(replace(backed_out, status=S.cancelled))


def test_cancel_overdue_strictly_after_24_hours_ses_3_15() -> None:
    """SES 3.15, JFS 3.38: the did-not-start cancel is due within 24 hours of the back-out."""
    backed_out = Facts(status=S.accepted, start_backed_out_at=NOW)
    window = rules.BACK_OUT_CANCEL_WINDOW
    assert window == timedelta(hours=24)
    assert not rules.cancel_overdue(backed_out, Clock.at(NOW + window))
    assert rules.cancel_overdue(backed_out, Clock.at(NOW + window + timedelta(seconds=1)))
    # Nothing pending, nothing overdue.
    assert not rules.cancel_overdue(Facts(status=S.accepted), Clock.at(NOW + 2 * window))


# --- the acknowledgement window (JFS 3.07-3.08) --------------------------------------------


def test_acknowledged_in_time_by_the_uk_date_of_the_acknowledgement_jfs_3_07() -> None:
    """JFS 3.07: acknowledged on or before the due date (a UK date) is in time."""
    due = date(2026, 3, 3)
    on_time = Facts(acknowledged_at=datetime(2026, 3, 3, 23, 59, tzinfo=UTC))
    late = Facts(acknowledged_at=datetime(2026, 3, 4, 0, 0, tzinfo=UTC))
    assert rules.acknowledged_in_time(on_time, today=date(2026, 4, 1))
    assert not rules.acknowledged_in_time(late, today=due)


def test_acknowledged_in_time_uses_uk_summer_time_jfs_3_07() -> None:
    """domain.md §3: dates are UK local dates; 23:30 UTC in summer is the next UK day."""
    facts = Facts(
        acknowledgement_due=date(2026, 6, 2),
        acknowledged_at=datetime(2026, 6, 2, 23, 30, tzinfo=UTC),  # 00:30 BST on 3 June
    )
    assert not rules.acknowledged_in_time(facts, today=date(2026, 6, 3))


def test_not_yet_acknowledged_is_in_time_until_the_due_date_jfs_3_08() -> None:
    """JFS 3.08: unacknowledged, the referral can still be acknowledged until its due date."""
    facts = Facts()
    assert rules.acknowledged_in_time(facts, today=date(2026, 3, 3))
    assert not rules.acknowledged_in_time(facts, today=date(2026, 3, 4))


def test_acknowledgement_deadline_is_the_calendars_jfs_3_07() -> None:
    """domain.md §3: referral Friday 6 March 2026 is due Monday 9 March."""
    assert rules.acknowledgement_deadline(date(2026, 3, 6), 2) == date(2026, 3, 9)
    assert rules.acknowledgement_deadline(REFERRAL_DATE, 2) == acknowledgement_due(REFERRAL_DATE, 2)


def test_working_day_deadline_none_where_the_programme_has_no_css_domain_7() -> None:
    """domain.md §7, §9: CWP has no CSS 1/2 deadlines; JFS's CSS 1 is the 8th working day."""
    assert rules.working_day_deadline(REFERRAL_DATE, None) is None
    assert rules.working_day_deadline(REFERRAL_DATE, 8) == date(2026, 3, 12)
    assert rules.working_day_deadline(REFERRAL_DATE, 10) == nth_working_day_after(REFERRAL_DATE, 10)


# --- guards: state and time rules (domain.md §4) -------------------------------------------


@pytest.mark.parametrize("status", list(S))
@pytest.mark.parametrize("action", list(A))
def test_check_state_follows_the_table_domain_4(status: S, action: A) -> None:
    """domain.md §4: any other action in any other state is 409 invalid-transition."""
    facts = Facts(status=status)
    if status in TRANSITIONS[action].sources:
        transitions.check_state(facts, action)
    else:
        with pytest.raises(InvalidTransition):
            transitions.check_state(facts, action)


@pytest.mark.parametrize("action", [A.acknowledge, A.accept, A.start])
def test_time_rules_refuse_after_the_acknowledgement_window_jfs_3_08(action: A) -> None:
    """JFS 3.08 note: acknowledge, accept and start refused once the window closed unused."""
    facts = Facts()
    transitions.check_time_rules(facts, action, date(2026, 3, 3))
    with pytest.raises(AcknowledgementWindowClosed):
        transitions.check_time_rules(facts, action, date(2026, 3, 4))


@pytest.mark.parametrize("action", [a for a in A if a not in {A.acknowledge, A.accept, A.start}])
def test_other_actions_have_no_time_rule_domain_4(action: A) -> None:
    """domain.md §4: reject is allowed after the deadline too; so are the rest."""
    transitions.check_time_rules(Facts(), action, date(2027, 1, 1))


def test_start_in_time_once_acknowledged_in_time_jfs_3_08() -> None:
    """JFS 3.08: a referral acknowledged in time may be started weeks later."""
    facts = Facts(status=S.accepted, acknowledged_at=NOW)
    transitions.check_time_rules(facts, A.start, date(2026, 5, 1))


def test_action_possible_combines_state_and_time_rules_domain_4() -> None:
    """``allowed_actions`` offers an action only if state and time rules both allow it."""
    facts = Facts()
    assert transitions.action_possible(facts, A.acknowledge, date(2026, 3, 3))
    assert not transitions.action_possible(facts, A.acknowledge, date(2026, 3, 4))  # JFS 3.08
    assert transitions.action_possible(facts, A.reject, date(2026, 3, 4))
    assert not transitions.action_possible(facts, A.end, date(2026, 3, 3))  # state


def test_after_a_back_out_only_the_did_not_start_cancels_are_possible_jfs_3_37() -> None:
    """JFS 3.37-3.38: until the provider cancels, that cancel is its only action."""
    facts = Facts(status=S.accepted, acknowledged_at=NOW, start_backed_out_at=NOW)
    possible = {a for a in A if transitions.action_possible(facts, a, date(2026, 3, 3))}
    assert possible == {A.cancel, A.did_not_start, A.auto_dna}


# --- the changes each action makes ---------------------------------------------------------


def test_acknowledge_records_the_instant_jfs_3_07() -> None:
    change = rules.acknowledge(CLOCK)
    assert change.fields == {"status": S.acknowledged, "acknowledged_at": NOW}
    assert change.event_data == {}


def test_accept_also_acknowledges_domain_4() -> None:
    """domain.md §4: accepting also acknowledges; an earlier acknowledgement is kept."""
    fresh = rules.accept(Facts(), CLOCK).fields
    assert fresh["status"] is S.accepted
    assert fresh["accepted_at"] == NOW
    assert fresh["acknowledged_at"] == NOW
    earlier = NOW - timedelta(hours=1)
    kept = rules.accept(Facts(status=S.acknowledged, acknowledged_at=earlier), CLOCK).fields
    assert kept["acknowledged_at"] == earlier


@pytest.mark.parametrize("note", [None, "a note"])
def test_reject_closes_by_provider_with_reason_jfs_3_35(note: str | None) -> None:
    """JFS 3.35-3.36, SES 3.8-3.13: rejected with a reason and an optional note."""
    change = rules.reject(CLOCK, "duplicate", note)
    assert change.fields == {
        "status": S.rejected,
        "closed_by": ClosedBy.provider,
        "closed_at": NOW,
        "rejection_reason": "duplicate",
    }
    assert change.event_data == {"reason": "duplicate", "note": note}


@pytest.mark.parametrize(
    ("reason", "records_outcome"),
    [
        (CancellationReason.no_contact, False),
        (CancellationReason.did_not_attend, True),
        (CancellationReason.did_not_start, True),
    ],
)
def test_cancel_records_css2_outcome_for_dna_and_dns_jfs_7_44(
    reason: CancellationReason, records_outcome: bool
) -> None:
    """JFS 7.44 (CSS 2): a DNA or DNS counts as an outcome recorded; no contact does not."""
    change = rules.cancel(Facts(status=S.accepted), CLOCK, reason, None)
    assert change.fields["status"] is S.cancelled
    assert change.fields["cancellation_reason"] is reason
    assert change.fields["closed_by"] is ClosedBy.provider
    assert ("outcome_recorded_on" in change.fields) is records_outcome
    if records_outcome:
        assert change.fields["outcome_recorded_on"] == CLOCK.today
    assert change.event_data == {"reason": str(reason), "note": None}


def test_cancel_keeps_the_first_recorded_outcome_jfs_7_44() -> None:
    """CSS 2 counts when an outcome was *first* recorded: a later one does not move it."""
    facts = Facts(status=S.accepted, outcome_recorded_on=date(2026, 3, 2))
    change = rules.cancel(facts, at(date(2026, 3, 20)), CancellationReason.did_not_start, None)
    assert "outcome_recorded_on" not in change.fields


def test_did_not_start_with_initial_meeting_date_jfs_3_31() -> None:
    """JFS 3.31-3.32: attended the initial meeting (on a day from referral to today)."""
    clock = at(date(2026, 3, 10))
    meeting = date(2026, 3, 5)
    change = rules.cancel(
        Facts(status=S.accepted), clock, CancellationReason.did_not_start, None, meeting
    )
    assert change.fields["initial_meeting_date"] == meeting
    assert change.event_data["initial_meeting_date"] == "2026-03-05"


@pytest.mark.parametrize("meeting", [date(2026, 3, 1), date(2026, 3, 11)])
def test_initial_meeting_date_outside_referral_to_today_is_refused_jfs_3_31(
    meeting: date,
) -> None:
    """JFS 3.31-3.32: the meeting was neither before the referral nor in the future."""
    with pytest.raises(DateOutOfRange):
        rules.cancel(
            Facts(status=S.accepted),
            at(date(2026, 3, 10)),
            CancellationReason.did_not_start,
            None,
            meeting,
        )


@pytest.mark.parametrize(
    "reason", [CancellationReason.no_contact, CancellationReason.did_not_attend]
)
def test_after_back_out_only_did_not_start_cancel_jfs_3_37(reason: CancellationReason) -> None:
    """JFS 3.37: after a back-out the referral must be cancelled as did_not_start."""
    facts = Facts(status=S.accepted, start_backed_out_at=NOW)
    with pytest.raises(InvalidTransition):
        rules.cancel(facts, CLOCK, reason, None)
    change = rules.cancel(facts, CLOCK, CancellationReason.did_not_start, None)
    assert change.fields["status"] is S.cancelled


def test_start_sets_dates_and_the_auto_end_day_jfs_5_08() -> None:
    """JFS 3.27, annex 3: start date = initial meeting date; JFS 5.08: auto end after the
    allotted days; CSS 2 outcome recorded today."""
    clock = at(date(2026, 3, 10))
    change = rules.start(
        Facts(status=S.accepted), clock, date(2026, 3, 9), "REF-1", allotted_days=30
    )
    assert change.fields == {
        "status": S.started,
        "start_date": date(2026, 3, 9),
        "initial_meeting_date": date(2026, 3, 9),
        "provider_reference": "REF-1",
        "auto_end_on": date(2026, 4, 8),
        "outcome_recorded_on": date(2026, 3, 10),
    }
    assert change.event_data == {"start_date": "2026-03-09", "provider_reference": "REF-1"}


@settings(deadline=None)
@given(
    offset=st.integers(min_value=-400, max_value=400),
    allotted=st.integers(min_value=1, max_value=400),
)
def test_start_date_from_referral_to_today_jfs_3_27(offset: int, allotted: int) -> None:
    """JFS 3.27: a start may be recorded retrospectively, never before the referral nor in
    the future; whenever it is accepted, auto end is the start plus the allotted days."""
    today = date(2026, 6, 1)
    start_date = REFERRAL_DATE + timedelta(days=offset)
    facts = Facts(status=S.accepted)
    if REFERRAL_DATE <= start_date <= today:
        change = rules.start(facts, at(today), start_date, None, allotted)
        assert change.fields["auto_end_on"] == start_date + timedelta(days=allotted)
    else:
        with pytest.raises(DateOutOfRange):
            rules.start(facts, at(today), start_date, None, allotted)


STARTED = Facts(status=S.started, acknowledged_at=NOW, start_date=date(2026, 3, 9))


def test_end_closes_with_its_code_and_dates_jfs_annex_2() -> None:
    clock = at(date(2026, 3, 20))
    change = rules.end(
        STARTED, clock, EndCode.found_work, date(2026, 3, 19), date(2026, 3, 18), None
    )
    assert change.fields == {
        "status": S.ended,
        "closed_by": ClosedBy.provider,
        "closed_at": clock.now,
        "end_code": 1,
        "end_date": date(2026, 3, 19),
        "last_engagement_date": date(2026, 3, 18),
        "policy_reference": None,
    }
    assert change.event_data["end_code"] == 1


def test_code_45_is_for_the_system_only_jfs_5_08() -> None:
    """JFS annex 2, 5.08: code 45 (end of allotted time) is set by the service only."""
    with pytest.raises(EndCodeAutomatedOnly):
        rules.end(
            STARTED, CLOCK, EndCode.end_of_allotted_time, date(2026, 3, 9), date(2026, 3, 9), None
        )


@pytest.mark.parametrize("code", [EndCode.no_longer_eligible, EndCode.exceptional_circumstances])
@pytest.mark.parametrize("reference", [None, ""])
def test_codes_37_and_46_need_a_policy_reference_jfs_annex_2(
    code: EndCode, reference: str | None
) -> None:
    """JFS annex 2: codes 37 and 46 only on the policy team's advice."""
    clock = at(date(2026, 3, 20))
    day = date(2026, 3, 19)
    with pytest.raises(PolicyReferenceRequired):
        rules.end(STARTED, clock, code, day, day, reference)
    assert rules.end(STARTED, clock, code, day, day, "POL-1").fields["end_code"] == int(code)


@settings(deadline=None)
@given(
    engagement=st.integers(min_value=-5, max_value=20),
    end=st.integers(min_value=-5, max_value=20),
)
def test_end_dates_ordered_start_engagement_end_today_jfs_annex_2(
    engagement: int, end: int
) -> None:
    """JFS annex 2: start ≤ last engagement ≤ end ≤ today, or 422 date-out-of-range."""
    assert STARTED.start_date is not None
    today = STARTED.start_date + timedelta(days=10)
    last_engagement_date = STARTED.start_date + timedelta(days=engagement)
    end_date = STARTED.start_date + timedelta(days=end)
    ordered = STARTED.start_date <= last_engagement_date <= end_date <= today
    if ordered:
        rules.end(STARTED, at(today), EndCode.found_work, end_date, last_engagement_date, None)
    else:
        with pytest.raises(DateOutOfRange):
            rules.end(STARTED, at(today), EndCode.found_work, end_date, last_engagement_date, None)


def test_back_out_clears_the_start_ses_3_15() -> None:
    """SES 3.15, JFS 3.37-3.38: back to accepted, start and CSS 2 outcome cleared, and the
    provider's cancel due within 24 hours."""
    facts = replace(STARTED, outcome_recorded_on=date(2026, 3, 9))
    change = rules.back_out(facts, CLOCK, "recorded in error")
    assert change.fields == {
        "status": S.accepted,
        "start_date": None,
        "initial_meeting_date": None,
        "auto_end_on": None,
        "outcome_recorded_on": None,
        "start_backed_out_at": NOW,
    }
    assert change.event_data == {
        "reason": "recorded in error",
        "backed_out_start_date": "2026-03-09",
        "cancel_due_by": (NOW + timedelta(hours=24)).isoformat(),
    }


# --- creating a referral (domain.md §2, §5) ------------------------------------------------


@pytest.mark.parametrize(
    ("mappa", "contact", "refused"),
    [(True, True, True), (True, False, False), (False, True, False), (False, False, False)],
)
def test_mappa_referral_without_contact_details_ses_3_32(
    mappa: bool, contact: bool, refused: bool
) -> None:
    """SES 3.32, GEN 88-90: a MAPPA referral carries no address, postcode or telephone."""
    if refused:
        with pytest.raises(MappaContactDetails):
            rules.check_mappa(mappa, contact)
    else:
        rules.check_mappa(mappa, contact)


def test_first_referral_is_not_a_re_referral_jfs_annex_3() -> None:
    assert rules.classify_new_referral([], max_re_referrals=0) is False


@pytest.mark.parametrize("status", [s for s in S if s.is_open])
def test_open_referral_blocks_a_new_one_jfs_5_19(status: S) -> None:
    """JFS 5.19: no second open referral on the programme."""
    with pytest.raises(OpenReferralExists):
        rules.classify_new_referral([Prior(status)], max_re_referrals=1)


@pytest.mark.parametrize("status", [S.rejected, S.cancelled])
def test_after_rejection_or_cancellation_not_a_re_referral_jfs_annex_3(status: S) -> None:
    """JFS annex 3: a new referral after a rejection, cancellation or DNA is not a
    re-referral, even where the programme allows none (SES 3.18)."""
    assert rules.classify_new_referral([Prior(status)], max_re_referrals=0) is False


def test_re_referral_after_a_participation_where_allowed_jfs_3_42() -> None:
    """JFS 3.42, 5.16: someone who started before may be re-referred once."""
    prior = [Prior(S.ended, end_code=1)]
    assert rules.classify_new_referral(prior, max_re_referrals=1) is True
    with pytest.raises(ReReferralNotAllowed):  # SES 3.18: never
        rules.classify_new_referral(prior, max_re_referrals=0)


def test_re_referred_once_already_jfs_5_16() -> None:
    """JFS 5.16: a participant re-referred before may not be re-referred again."""
    prior = [Prior(S.ended, end_code=1), Prior(S.ended, end_code=1, re_referral=True)]
    with pytest.raises(ReReferralNotAllowed):
        rules.classify_new_referral(prior, max_re_referrals=1)


@pytest.mark.parametrize("code", [EndCode.completed_provision, EndCode.end_of_allotted_time])
def test_no_re_referral_after_code_39_or_45_jfs_3_42(code: EndCode) -> None:
    """JFS 3.42, 5.16: not after completed provision (39) or end of allotted time (45)."""
    with pytest.raises(ReReferralNotAllowed):
        rules.classify_new_referral([Prior(S.ended, end_code=int(code))], max_re_referrals=5)


@settings(deadline=None)
@given(
    st.lists(
        st.builds(
            Prior,
            status=st.sampled_from([S.ended, S.rejected, S.cancelled]),
            end_code=st.sampled_from([None, *(int(c) for c in EndCode)]),
            re_referral=st.booleans(),
        ),
        max_size=6,
    ),
    st.integers(min_value=0, max_value=3),
)
def test_re_referral_classification_properties_jfs_3_42(
    prior: list[Prior], max_re_referrals: int
) -> None:
    """JFS annex 3, 3.42, 5.16: a re-referral exactly when someone participated before; it
    is refused when barred by code or by count, and never refused when nobody participated."""
    participated = any(p.status == S.ended for p in prior)
    barred = (
        any(p.status == S.ended and p.end_code in {39, 45} for p in prior)
        or sum(p.re_referral for p in prior) >= max_re_referrals
    )
    if participated and barred:
        with pytest.raises(ReReferralNotAllowed):
            rules.classify_new_referral(prior, max_re_referrals)
    else:
        assert rules.classify_new_referral(prior, max_re_referrals) is participated
