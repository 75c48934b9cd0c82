from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from app.credits.calculator import Rag

# Years 1900-2099: month arithmetic (the month before the first, a month's first and last day)
# must stay within four-digit years, so "0000-01" is a validation error, not a server error.
Month = Annotated[
    str,
    StringConstraints(pattern=r"^(19|20)\d{2}-(0[1-9]|1[0-2])$"),
    Field(examples=["2026-01"], description="A calendar month, YYYY-MM (years 1900 to 2099)."),
]


class CountsIn(BaseModel):
    """A standard's counts for a month; `met` may not exceed `eligible` (a rule JSON Schema
    cannot state: otherwise 422 `validation-error`)."""

    model_config = ConfigDict(extra="forbid")

    eligible: int = Field(ge=0, le=10**9)
    met: int = Field(ge=0, le=10**9)

    @model_validator(mode="after")
    def _met_within_eligible(self) -> Self:
        if self.met > self.eligible:
            raise ValueError("met may not exceed eligible")
        return self


class MonthIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month
    css1: CountsIn
    css2: CountsIn


class CalculateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    monthly_service_fee_pence: int = Field(ge=0, le=10**12)
    months: list[MonthIn] = Field(
        min_length=1,
        max_length=120,
        description="Distinct months in ascending order (otherwise 422 `validation-error`).",
    )

    @model_validator(mode="after")
    def _ascending(self) -> Self:
        months = [m.month for m in self.months]
        if months != sorted(set(months)):
            raise ValueError("months must be distinct and in ascending order")
        return self


class StandardOut(BaseModel):
    eligible: int
    met: int
    percent: str | None = Field(description="met / eligible as a percentage, two decimals.")
    rag: Rag
    deduction_percent: int


class MonthOut(BaseModel):
    month: str
    css1: StandardOut
    css2: StandardOut
    deduction_percent: int
    deduction_pence: int
    fee_payable_pence: int
    termination_threshold: bool = Field(description="A standard red three months running.")
    termination_right: bool = Field(description="Red in four of the last twelve months.")
    final: bool | None = Field(
        default=None,
        description="Live report: every cohort deadline has passed (else provisional).",
    )


class ServiceCreditReport(BaseModel):
    months: list[MonthOut]
    total_deduction_pence: int


class ContractServiceCreditReport(ServiceCreditReport):
    contract_id: str
    monthly_service_fee_pence: int
