"""Sandbox endpoints (api-contract.md, Sandbox): only with ``PRAP_SANDBOX=1``, else 404.

Always documented (the OpenAPI document is the same whatever the settings), marked
sandbox-only. No token needed: the sandbox exists for JCP-side test harnesses.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from app.contracts.schemas import ProviderId, WithoutNul
from app.core.auth import Role
from app.core.deps import AppSettings, Session
from app.core.media_types import require_json_body
from app.core.problems import NotFound, problem_responses
from app.core.settings import Settings
from app.sandbox import service


async def require_sandbox(settings: AppSettings) -> Settings:
    if not settings.sandbox:
        raise NotFound("Sandbox endpoints are enabled with PRAP_SANDBOX=1.")
    return settings


SandboxSettings = Annotated[Settings, Depends(require_sandbox)]

router = APIRouter(
    prefix="/v1/sandbox",
    tags=["sandbox"],
    responses=problem_responses(NotFound),
    # No token here, so the media type is checked first of all (api-contract.md, order).
    dependencies=[Depends(require_json_body)],
)

SANDBOX_NOTE = "**Sandbox only** (`PRAP_SANDBOX=1`); otherwise 404. No token needed."


EARLIEST_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_CLOCK = datetime(2100, 1, 1, tzinfo=UTC)


def _as_text(value: object) -> object:
    # FastAPI validates the decoded body in Python mode, where pydantic would take a number
    # as Unix time: the contract wants a date-time text only.
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time text")
    return value


def _within_clock_range(now: datetime) -> datetime:
    # The date as written (the document's pattern says the same: a year 20xx).
    if not EARLIEST_CLOCK.year <= now.year < LATEST_CLOCK.year:
        raise ValueError("must be from 2000-01-01 to 2099-12-31")
    return now


# api-contract.md, Sandbox: an RFC 3339 date-time with an offset (strict: never a number), in
# the years the service's rules are made for.
SandboxInstant = Annotated[
    AwareDatetime, BeforeValidator(_as_text), AfterValidator(_within_clock_range)
]


class ClockSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    now: SandboxInstant = Field(
        description="An RFC 3339 date-time with an offset, from 2000-01-01 to 2099-12-31.",
        examples=["2026-03-02T09:00:00Z"],
        json_schema_extra={"pattern": "^20[0-9]{2}-"},
    )


class ClockOut(BaseModel):
    now: datetime
    today: str = Field(description="The UK local date at `now`.")


class TokenRequest(BaseModel):
    # A provider's token names its provider: said in the schema too, so that clients and
    # fuzzers know it (JSON Schema if/then).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"role": {"const": "provider"}}, "required": ["role"]},
            "then": {
                "required": ["provider_id"],
                "properties": {"provider_id": {"type": "string"}},
            },
        },
    )

    # No NUL: the token's ``sub`` is recorded as the actor of every action taken with it.
    sub: Annotated[str, WithoutNul] = Field(min_length=1, max_length=200)
    role: Role
    provider_id: ProviderId | None = None
    scope: str | None = Field(default=None, max_length=200, examples=["referrals claims"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.put(
    "/clock",
    operation_id="setSandboxClock",
    response_model=ClockOut,
    description=f"Stand the clock still at `now`. {SANDBOX_NOTE}",
)
async def set_sandbox_clock(body: ClockSet, _s: SandboxSettings, session: Session) -> ClockOut:
    clock = await service.set_clock(session, body.now)
    return ClockOut(now=clock.now, today=clock.today.isoformat())


@router.delete(
    "/clock",
    operation_id="resetSandboxClock",
    status_code=204,
    response_class=Response,
    description=f"Back to real time. {SANDBOX_NOTE}",
)
async def reset_sandbox_clock(_s: SandboxSettings, session: Session) -> Response:
    await service.reset_clock(session)
    return Response(status_code=204)


@router.post(
    "/tokens",
    operation_id="createSandboxToken",
    response_model=TokenOut,
    description=f"Mint a token for any role. {SANDBOX_NOTE}",
)
async def create_sandbox_token(body: TokenRequest, settings: SandboxSettings) -> TokenOut:
    token = service.sandbox_token(
        settings,
        sub=body.sub,
        role=body.role,
        provider_id=body.provider_id,
        scopes=(body.scope or "").split(),
    )
    return TokenOut(access_token=token)
