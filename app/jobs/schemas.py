from __future__ import annotations

import enum
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class JobName(enum.StrEnum):
    auto_dna = "auto-dna"
    auto_end = "auto-end"
    retention = "retention"


class JobTrigger(enum.StrEnum):
    api = "api"
    cli = "cli"
    scheduler = "scheduler"


class JobRunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date | None = Field(
        default=None, description="The day to run as of; today by default, never later."
    )


class _RunFacts(BaseModel):
    run_id: int
    as_of: date
    batches: int
    duration_ms: int


class AutoDnaRunOut(_RunFacts):
    closed: int = Field(description="Referrals closed as Did Not Attend (JFS 3.40).")


class AutoEndRunOut(_RunFacts):
    ended: int = Field(description="Referrals ended with code 45 (JFS 5.08).")


class RetentionRunOut(_RunFacts):
    erased: int = Field(
        description="Closed referrals erased, their contract's records retention over (JFS 1.33)."
    )


class JobRunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    job: JobName
    trigger: JobTrigger
    as_of: date
    started_at: datetime
    finished_at: datetime
    duration_ms: int
    changed: int
    batches: int


class JobRunList(BaseModel):
    items: list[JobRunOut]
    next_cursor: str | None
