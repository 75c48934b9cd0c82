from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from app.programmes.schemas import ProgrammeCode


def _without_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refused as a validation error, never a 500 (the
    # value itself is not echoed back).
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# For every free-text input that reaches a text column or a query: ids, references, reasons.
WithoutNul = AfterValidator(_without_nul)

ProviderId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$"),
]
Pence = Annotated[int, Field(ge=0, le=10**12, description="Integer pence.")]


class ContractCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider_id: ProviderId
    programme: ProgrammeCode
    start_date: date
    end_date: date
    monthly_service_fee_pence: Pence
    attachment_fee_pence: Pence | None = None
    job_outcome_fee_pence: Pence | None = None
    sustainment_fee_pence: Pence | None = None
    records_retention_end_date: date | None = Field(
        default=None,
        description="Records Retention End Date (JFS 1.33): after it, the contract's closed "
        "referrals are erased by the daily retention job.",
    )

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class ContractOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    provider_id: str
    programme: ProgrammeCode
    start_date: date
    end_date: date
    monthly_service_fee_pence: int
    attachment_fee_pence: int | None
    job_outcome_fee_pence: int | None
    sustainment_fee_pence: int | None
    records_retention_end_date: date | None
    created_at: datetime
