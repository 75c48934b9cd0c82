from __future__ import annotations

import enum
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.credits.calculator import Rag
from app.credits.schemas import Month


class PaymentLineKind(enum.StrEnum):
    claim = "claim"
    service_fee = "service_fee"
    # A paid attachment claim voided by a back-out, taken back (domain.md §8): negative.
    recovery = "recovery"


class PaymentRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month


class StandardFigures(BaseModel):
    eligible: int
    met: int
    percent: str | None
    rag: Rag
    deduction_percent: int


class FeeFigures(BaseModel):
    """The CSS figures a service fee was paid on (JFS 6.07-6.09)."""

    css1: StandardFigures
    css2: StandardFigures
    deduction_percent: int
    final_from: date = Field(description="The day the month's result turned final.")


class PaymentLineOut(BaseModel):
    kind: PaymentLineKind
    claim_id: str | None
    contract_id: str
    provider_id: str
    month: str = Field(description="The run's month; on a service-fee line, the fee month.")
    fee_month: str | None = Field(description="A service-fee line: the month whose fee it pays.")
    amount_pence: int = Field(
        description="What is paid: a fee less its deduction; negative for a recovery."
    )
    deduction_pence: int | None
    figures: FeeFigures | None = None


class HeldFeeOut(BaseModel):
    """A fee not paid yet: its month's result is still provisional (JFS 6.06, 6.09)."""

    contract_id: str
    provider_id: str
    fee_month: str
    payable_from: date


class PaymentRunOut(BaseModel):
    id: str
    month: str
    created_at: datetime
    lines: list[PaymentLineOut]
    held_fees: list[HeldFeeOut]
    total_pence: int


class PaymentRunSummary(BaseModel):
    id: str
    month: str
    created_at: datetime
    total_pence: int


class PaymentRunList(BaseModel):
    items: list[PaymentRunSummary]
    next_cursor: str | None
