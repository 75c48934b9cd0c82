from __future__ import annotations

import enum

from pydantic import BaseModel, ConfigDict, Field


class ProgrammeCode(enum.StrEnum):
    """The programme catalogue."""

    JFS = "JFS"
    SES = "SES"
    CWP = "CWP"
    FND = "FND"


class FundingElement(enum.StrEnum):
    """GEN 16."""

    service_fee = "service_fee"
    attachment = "attachment"
    job_outcome = "job_outcome"
    sustainment = "sustainment"


class AllottedFrom(enum.StrEnum):
    """The day the allotted time runs from (JFS 5.08; HTW 115, 159, 162 for CWP)."""

    start_date = "start_date"
    referral_date = "referral_date"


class ProgrammeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: ProgrammeCode
    name: str
    acknowledge_working_days: int = Field(
        description="Acknowledge within N working days; the day of receipt is day 1 (JFS 3.07)."
    )
    initial_meeting_working_days: int | None = Field(
        description="CSS 1: initial meeting within N working days of the referral date."
    )
    outcome_recorded_working_days: int | None = Field(
        description="CSS 2: start or outcome recorded within N working days."
    )
    auto_dna_days: int = Field(description="Did Not Attend after N calendar days (JFS 3.40).")
    allotted_days: int = Field(description="Allotted time, calendar days (JFS 5.08).")
    allotted_from: AllottedFrom = Field(
        description="The allotted time runs from the start date, or for CWP from the original "
        "referral date (HTW 115, 159, 162)."
    )
    exclusive: bool = Field(
        description="While a referral to it is open, no referral to other provision (HTW 70)."
    )
    max_duration_working_days: int | None = Field(
        description="Someone who reached this duration may not be re-referred (JFS 5.16, 1.23)."
    )
    max_re_referrals: int = Field(description="Re-referrals allowed (JFS 3.42, 5.16).")
    funding: list[FundingElement]
    job_outcome_min_hours: int | None


class ProgrammeList(BaseModel):
    items: list[ProgrammeOut]
