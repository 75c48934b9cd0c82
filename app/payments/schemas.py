from __future__ import annotations

import enum
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.credits.schemas import Month


class PaymentLineKind(enum.StrEnum):
    claim = "claim"
    service_fee = "service_fee"


class PaymentRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    month: Month


class PaymentLineOut(BaseModel):
    kind: PaymentLineKind
    claim_id: str | None
    contract_id: str
    provider_id: str
    month: str
    amount_pence: int
    deduction_pence: int | None


class PaymentRunOut(BaseModel):
    id: str
    month: str
    created_at: datetime
    lines: list[PaymentLineOut]
    total_pence: int


class PaymentRunSummary(BaseModel):
    id: str
    month: str
    created_at: datetime
    total_pence: int


class PaymentRunList(BaseModel):
    items: list[PaymentRunSummary]
    next_cursor: str | None
