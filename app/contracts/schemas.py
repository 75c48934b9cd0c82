from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from app.programmes.schemas import ProgrammeCode


def _without_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refused as a validation error, never a 500 (the
    # value itself is not echoed back).
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


@dataclass(frozen=True, slots=True)
class _WithoutNul:
    """Refuses U+0000, and says so in the schema (``pattern``), so that clients and fuzzers
    know the rule the server applies."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_without_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = "^[^\\x00]*$"
        return json_schema


# For every free-text input that reaches a text column or a query: ids, references, reasons.
WithoutNul = _WithoutNul()

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
    end_date: date = Field(
        description="On or after `start_date` (otherwise 422 `validation-error`)."
    )
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
        # Across fields, so JSON Schema cannot say it: the description does.
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
