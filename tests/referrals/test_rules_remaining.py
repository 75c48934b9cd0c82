"""The referral rules test_rules.py does not reach, as pure functions (app/referrals/rules.py;
domain.md §4-§5a, JFS 3.40, 5.08, 5.16, HTW 70, RFC 7396). No app, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.calendar import nth_working_day_after
from app.core.clock import Clock
from app.core.problems import (
    AcknowledgementWindowClosed,
    ExclusiveProgramme,
    InvalidTransition,
)
from app.programmes.schemas import AllottedFrom
from app.referrals import rules
from app.referrals.states import (
    CancellationReason,
    ClosedBy,
    EndCode,
    ReferralStatus,
)
from tests.referrals.test_rules import Facts

pytestmark = pytest.mark.pure
# Without hypothesis's per-example deadline: on a loaded machine it would be a timed assertion.

S = ReferralStatus
NOW = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
CLOCK = Clock.at(NOW)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@dataclass(frozen=True)
class Prior:
    status: str = S.ended
    end_code: int | None = EndCode.found_work
    re_referral: bool = False
    start_date: date | None = None
    end_date: date | None = None


# --- the acknowledgement window as a time rule (JFS 3.07-3.08) -----------------------------


def test_the_acknowledgement_window_is_acknowledged_in_time_with_its_problem() -> None:
    window = rules.ACKNOWLEDGEMENT_WINDOW
    assert window.problem is AcknowledgementWindowClosed
    window.check(Facts(), date(2026, 3, 3))
    with pytest.raises(AcknowledgementWindowClosed):
        window.check(Facts(), date(2026, 3, 4))


@settings(deadline=None)
@given(today=days, due=days)
def test_a_time_rule_raises_exactly_when_it_does_not_hold(today: date, due: date) -> None:
    facts = Facts(acknowledgement_due=due)
    holds = rules.acknowledged_in_time(facts, today)
    try:
        rules.ACKNOWLEDGEMENT_WINDOW.check(facts, today)
    except AcknowledgementWindowClosed:
        assert not holds
    else:
        assert holds


# --- the allotted time (JFS 5.08; HTW 115, 159, 162) ---------------------------------------


@settings(deadline=None)
@given(referral_date=days, offset=st.integers(0, 400), allotted=st.integers(0, 800))
def test_allotted_time_runs_from_the_start_or_for_cwp_the_referral(
    referral_date: date, offset: int, allotted: int
) -> None:
    start_date = referral_date + timedelta(days=offset)
    from_start = rules.allotted_time_ends(
        referral_date, start_date, allotted, AllottedFrom.start_date
    )
    from_referral = rules.allotted_time_ends(
        referral_date, start_date, allotted, AllottedFrom.referral_date
    )
    assert from_start == start_date + timedelta(days=allotted)
    assert from_referral == referral_date + timedelta(days=allotted)
    assert from_referral <= from_start  # a late start shortens CWP's provision, never others'


# --- the system's closes (JFS 3.40, 5.08) --------------------------------------------------


@settings(deadline=None)
@given(as_of=days)
def test_auto_dna_cancels_as_did_not_attend_by_the_system_jfs_3_40(as_of: date) -> None:
    change = rules.auto_did_not_attend(CLOCK, as_of)
    assert change.fields == {
        "status": S.cancelled,
        "closed_by": ClosedBy.system,
        "closed_at": NOW,
        "cancellation_reason": CancellationReason.did_not_attend,
    }
    assert change.event_data == {"reason": "did_not_attend", "as_of": as_of.isoformat()}


@settings(deadline=None)
@given(due=days, as_of=days)
def test_auto_end_ends_with_code_45_on_its_day_jfs_5_08(due: date, as_of: date) -> None:
    change = rules.auto_end(due, CLOCK, as_of)
    assert change.fields == {
        "status": S.ended,
        "closed_by": ClosedBy.system,
        "closed_at": NOW,
        "end_code": 45,
        "end_date": due,
    }
    assert change.event_data == {"end_code": 45, "as_of": as_of.isoformat()}
    assert EndCode(change.fields["end_code"]) is EndCode.end_of_allotted_time


def test_a_provider_close_and_a_system_close_differ_only_in_who_closed() -> None:
    provider = rules.cancel(
        Facts(status=S.accepted), CLOCK, CancellationReason.did_not_attend, None
    )
    system = rules.auto_did_not_attend(CLOCK, CLOCK.today)
    assert provider.fields["closed_by"] is ClosedBy.provider
    assert system.fields["closed_by"] is ClosedBy.system
    assert {k: v for k, v in provider.fields.items() if k != "outcome_recorded_on"} | {
        "closed_by": ClosedBy.system
    } == system.fields


# --- changes of circumstances (JFS 4.23-4.24, RFC 7396) ------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


def test_merge_patch_examples_of_rfc_7396() -> None:
    """RFC 7396 appendix A, a selection."""
    assert rules.merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert rules.merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert rules.merge_patch({"a": "b"}, {"a": None}) == {}
    assert rules.merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert rules.merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert rules.merge_patch({"a": "c"}, {"a": ["b"]}) == {"a": ["b"]}
    assert rules.merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert rules.merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert rules.merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert rules.merge_patch({"a": "b"}, ["c"]) == ["c"]
    assert rules.merge_patch({"a": "foo"}, None) is None
    assert rules.merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert rules.merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}
    assert rules.merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


@settings(deadline=None)
@given(target=json_objects)
def test_an_empty_patch_changes_nothing(target: dict[str, Any]) -> None:
    assert rules.merge_patch(target, {}) == target


@settings(deadline=None)
@given(target=json_objects, patch=json_objects)
def test_a_patch_applied_twice_is_applied_once(
    target: dict[str, Any], patch: dict[str, Any]
) -> None:
    once = rules.merge_patch(target, patch)
    assert rules.merge_patch(once, patch) == once


@settings(deadline=None)
@given(target=json_objects, patch=json_objects)
def test_a_patch_never_mutates_its_target(target: dict[str, Any], patch: dict[str, Any]) -> None:
    before = repr(target)
    rules.merge_patch(target, patch)
    assert repr(target) == before


@settings(deadline=None)
@given(before=json_objects, after=json_objects)
def test_changed_fields_are_the_names_whose_values_differ(
    before: dict[str, Any], after: dict[str, Any]
) -> None:
    changed = rules.changed_fields(before, after)
    assert changed == sorted(changed)
    assert changed == rules.changed_fields(after, before)
    assert (changed == []) is (
        {k: v for k, v in before.items() if v is not None}
        == {k: v for k, v in after.items() if v is not None}
    )
    for name in changed:
        assert before.get(name) != after.get(name)


def test_changed_fields_name_fields_never_values() -> None:
    changed = rules.changed_fields({"phone": "0123"}, {"phone": "0456", "mobile": "07700"})
    assert changed == ["mobile", "phone"]


@pytest.mark.parametrize("status", list(S))
def test_only_an_open_referrals_participant_can_change_domain_5a(status: S) -> None:
    if status.is_terminal:
        with pytest.raises(InvalidTransition):
            rules.check_participant_changeable(Facts(status=status))
    else:
        rules.check_participant_changeable(Facts(status=status))


# --- creating a referral (JFS 5.16, 1.23; HTW 70) ------------------------------------------


@settings(deadline=None)
@given(start=days, length=st.integers(0, 1000), limit=st.integers(1, 600))
def test_maximum_duration_is_reached_on_the_nth_working_day_jfs_5_16(
    start: date, length: int, limit: int
) -> None:
    end = start + timedelta(days=length)
    prior = Prior(start_date=start, end_date=end)
    assert rules.reached_maximum_duration(prior, limit) is (
        end >= nth_working_day_after(start, limit)
    )


def test_running_out_the_allotted_time_reaches_the_maximum_whatever_the_dates_jfs_5_08() -> None:
    prior = Prior(end_code=EndCode.end_of_allotted_time)
    assert rules.reached_maximum_duration(prior, 10_000)


def test_without_both_dates_the_maximum_is_not_reached() -> None:
    assert not rules.reached_maximum_duration(Prior(start_date=date(2026, 1, 5)), 1)
    assert not rules.reached_maximum_duration(Prior(end_date=date(2026, 1, 5)), 1)


@settings(deadline=None)
@given(
    open_elsewhere=st.lists(st.sampled_from(["CWP", "JFS", "RTW", "WHP"]), max_size=4),
    exclusive=st.frozensets(st.sampled_from(["CWP", "JFS", "RTW", "WHP"])),
)
def test_an_open_referral_on_an_exclusive_programme_bars_others_htw_70(
    open_elsewhere: list[str], exclusive: frozenset[str]
) -> None:
    if set(open_elsewhere) & exclusive:
        with pytest.raises(ExclusiveProgramme):
            rules.check_exclusive_programmes(open_elsewhere, exclusive)
    else:
        rules.check_exclusive_programmes(open_elsewhere, exclusive)


# --- the NINO pattern the document states (JSON Schema ``pattern``) ------------------------


@settings(deadline=None)
@given(st.text(alphabet="ABCDEFGHJKLMNOPQRSTUVWXYZabcdz0123456789 ", max_size=14))
def test_the_documented_pattern_is_the_servers_check(raw: str) -> None:
    assert bool(re.search(rules.NINO_PATTERN, raw)) is rules.is_valid_nino(raw)


@settings(deadline=None)
@given(st.from_regex(rules.NINO_PATTERN, fullmatch=True))
def test_whatever_the_pattern_admits_normalises_to_nine_characters(raw: str) -> None:
    normalised = rules.normalise_nino(raw)
    assert len(normalised) == 9
    assert rules.is_valid_nino(normalised)


def test_the_mappa_notice_cites_its_guidance() -> None:
    assert "SES 3.37" in rules.MAPPA_NOTICE
