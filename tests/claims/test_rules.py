"""Claim eligibility as pure functions (app/claims/rules.py; domain.md §8, SES 3.40,
PRaP 11, GEN 16). No app, no database."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.claims import rules
from app.claims.states import ClaimStatus, ClaimType
from app.claims.states import OutcomeBasis as B
from app.claims.transitions import LIVE_CLAIM_STATUSES, LIVE_CLAIMS_SQL
from app.core.problems import ClaimNotEligible

pytestmark = pytest.mark.pure
# Hypothesis runs here without its per-example deadline: a loaded machine (or the holidays
# package building a year on first use) would make it a timed assertion.

START = date(2026, 1, 5)
JOB_START = date(2026, 1, 12)
TODAY = date(2026, 9, 1)


def test_funded_element_returns_the_contract_fee_gen_16() -> None:
    """GEN 16: only where the programme funds the element and the contract prices it."""
    assert rules.check_funded(ClaimType.attachment, True, 50_000) == 50_000
    assert rules.check_funded(ClaimType.attachment, True, 0) == 0
    with pytest.raises(ClaimNotEligible, match="does not fund"):
        rules.check_funded(ClaimType.job_outcome, False, 50_000)
    with pytest.raises(ClaimNotEligible, match="no job_outcome fee"):
        rules.check_funded(ClaimType.job_outcome, True, None)


def test_attachment_needs_a_start_ses_3_40() -> None:
    """SES 3.40: the attachment fee is earned by the start."""
    rules.check_attachment(START)
    with pytest.raises(ClaimNotEligible):
        rules.check_attachment(None)


def outcome(**overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "start_date": START,
        "end_date": None,
        "job_start_date": JOB_START,
        "hours_per_week": 16,
        "basis": B.lasted_13_weeks,
        "min_hours": 16,
        "today": TODAY,
    }
    rules.check_job_outcome(**(arguments | overrides))


def test_job_outcome_eligible_prap_11() -> None:
    outcome()
    outcome(basis=B.expected_13_weeks, today=JOB_START)  # PRaP 11: expected to last
    outcome(min_hours=None, hours_per_week=1)  # no programme minimum


@pytest.mark.parametrize(
    "overrides",
    [
        {"start_date": None},
        {"job_start_date": None},
        {"hours_per_week": None},
        {"basis": None},
    ],
)
def test_job_outcome_needs_start_and_job_facts_domain_8(overrides: dict[str, Any]) -> None:
    with pytest.raises(ClaimNotEligible):
        outcome(**overrides)


def test_job_start_not_before_provision_start_domain_8() -> None:
    outcome(job_start_date=START)
    with pytest.raises(ClaimNotEligible, match="before the participant started"):
        outcome(job_start_date=START - timedelta(days=1))


def test_job_start_within_13_weeks_of_the_end_domain_8() -> None:
    """domain.md §8 (reading): a job starting no later than 13 weeks after the end date."""
    end = date(2026, 3, 2)
    limit = end + timedelta(weeks=rules.JOB_START_AFTER_END_WEEKS)
    outcome(end_date=end, job_start_date=limit, basis=B.expected_13_weeks)
    with pytest.raises(ClaimNotEligible, match="13 weeks after"):
        outcome(end_date=end, job_start_date=limit + timedelta(days=1), basis=B.expected_13_weeks)


def test_job_start_not_in_the_future_domain_8() -> None:
    with pytest.raises(ClaimNotEligible, match="future"):
        outcome(job_start_date=TODAY + timedelta(days=1), basis=B.expected_13_weeks)


def test_hours_at_least_the_programme_minimum_prap_11() -> None:
    """domain.md §7, PRaP 11: SES and FND need 16 hours a week."""
    with pytest.raises(ClaimNotEligible, match="16 hours"):
        outcome(hours_per_week=15)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=200))
def test_lasted_13_weeks_only_once_13_weeks_have_passed_prap_11(days: int) -> None:
    """PRaP 11: basis ``lasted_13_weeks`` needs today ≥ job start + 13 weeks."""
    today = JOB_START + timedelta(days=days)
    if days >= 7 * rules.OUTCOME_WEEKS:
        outcome(today=today)
    else:
        with pytest.raises(ClaimNotEligible, match="not lasted"):
            outcome(today=today)


def sustainment(**overrides: Any) -> None:
    arguments: dict[str, Any] = {
        "outcome_validated": True,
        "job_start_date": JOB_START,
        "weeks_in_work_last_30": 26,
        "today": JOB_START + timedelta(weeks=26),
    }
    rules.check_sustainment(**(arguments | overrides))


def test_sustainment_after_26_of_30_weeks_prap_11() -> None:
    """PRaP 11: "26 weeks out of last 30", after a validated job outcome."""
    sustainment()
    sustainment(weeks_in_work_last_30=30)


@pytest.mark.parametrize(
    "overrides",
    [
        {"outcome_validated": False},
        {"job_start_date": None},
        {"weeks_in_work_last_30": None},
        {"weeks_in_work_last_30": 25},
        {"today": JOB_START + timedelta(weeks=26, days=-1)},
    ],
)
def test_sustainment_refused_prap_11(overrides: dict[str, Any]) -> None:
    with pytest.raises(ClaimNotEligible):
        sustainment(**overrides)


def test_live_claims_sql_lists_the_live_statuses_domain_8() -> None:
    """domain.md §8: one live claim of each type per referral; rejected and voided ones do
    not count. The SQL fragment and the tuple must say the same."""
    assert set(LIVE_CLAIM_STATUSES) == {
        ClaimStatus.submitted,
        ClaimStatus.validated,
        ClaimStatus.paid,
    }
    for status in ClaimStatus:
        assert (f"'{status}'" in LIVE_CLAIMS_SQL) is (status in LIVE_CLAIM_STATUSES)
