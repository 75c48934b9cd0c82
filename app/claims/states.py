"""Claims vocabulary (domain.md §8; GEN 16, PRaP 11)."""

from __future__ import annotations

import enum


class ClaimType(enum.StrEnum):
    attachment = "attachment"
    job_outcome = "job_outcome"
    sustainment = "sustainment"


class ClaimStatus(enum.StrEnum):
    submitted = "submitted"
    validated = "validated"
    rejected = "rejected"
    paid = "paid"
    voided = "voided"


class OutcomeBasis(enum.StrEnum):
    """PRaP 11: the job lasted 13 weeks, or is expected to."""

    lasted_13_weeks = "lasted_13_weeks"
    expected_13_weeks = "expected_13_weeks"


class ClaimEventType(enum.StrEnum):
    submitted = "submitted"
    validated = "validated"
    rejected = "rejected"
    voided = "voided"
    paid = "paid"
