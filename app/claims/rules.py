"""Claim eligibility as pure functions (domain.md §8; SES 3.40, PRaP 11, GEN 16, GEN 122).

Every breach of §8, dates included, is ``claim-not-eligible`` (api-contract.md).
"""

from __future__ import annotations

from datetime import date, timedelta

from app.claims.states import ClaimType, OutcomeBasis
from app.core.problems import ClaimNotEligible

# PRaP 11: a job outcome is a job lasting (or expected to last) 13 weeks; sustainment is
# 26 weeks in work out of the last 30.
OUTCOME_WEEKS = 13
SUSTAINMENT_WEEKS = 26
SUSTAINMENT_WINDOW_WEEKS = 30
# Our reading (domain.md §8): a job may start up to 13 weeks after the end of provision.
JOB_START_AFTER_END_WEEKS = 13


def check_funded(claim_type: ClaimType, funded: bool, fee_pence: int | None) -> int:
    """The programme pays this element (GEN 16) and the contract prices it."""
    if not funded:
        raise ClaimNotEligible(f"The programme does not fund {claim_type} payments.")
    if fee_pence is None:
        raise ClaimNotEligible(f"The contract has no {claim_type} fee.")
    return fee_pence


def check_attachment(start_date: date | None) -> None:
    """SES 3.40: the attachment fee is earned by the start."""
    if start_date is None:
        raise ClaimNotEligible("An attachment fee needs a recorded start.")


def check_job_outcome(
    *,
    start_date: date | None,
    end_date: date | None,
    job_start_date: date | None,
    hours_per_week: int | None,
    basis: OutcomeBasis | None,
    min_hours: int | None,
    today: date,
) -> None:
    if start_date is None:
        raise ClaimNotEligible("A job outcome needs a recorded start.")
    if job_start_date is None or hours_per_week is None or basis is None:
        raise ClaimNotEligible("A job outcome needs job_start_date, hours_per_week and basis.")
    if job_start_date < start_date:
        raise ClaimNotEligible("The job started before the participant started provision.")
    if end_date is not None and job_start_date > end_date + timedelta(
        weeks=JOB_START_AFTER_END_WEEKS
    ):
        raise ClaimNotEligible("The job started more than 13 weeks after provision ended.")
    if job_start_date > today:
        raise ClaimNotEligible("The job start date is in the future.")
    if min_hours is not None and hours_per_week < min_hours:
        raise ClaimNotEligible(f"A job outcome needs at least {min_hours} hours a week.")
    if basis is OutcomeBasis.lasted_13_weeks and today < job_start_date + timedelta(
        weeks=OUTCOME_WEEKS
    ):
        raise ClaimNotEligible("The job has not lasted 13 weeks yet.")


def check_sustainment(
    *,
    outcome_validated: bool,
    job_start_date: date | None,
    weeks_in_work_last_30: int | None,
    today: date,
) -> None:
    if not outcome_validated or job_start_date is None:
        raise ClaimNotEligible("A sustainment payment needs a validated job outcome.")
    if weeks_in_work_last_30 is None or weeks_in_work_last_30 < SUSTAINMENT_WEEKS:
        raise ClaimNotEligible("A sustainment payment needs 26 weeks in work out of the last 30.")
    if today < job_start_date + timedelta(weeks=SUSTAINMENT_WEEKS):
        raise ClaimNotEligible("26 weeks have not passed since the job started.")
