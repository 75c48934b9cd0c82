"""Webhook request and response bodies (api-contract.md, Webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.contracts.schemas import WithoutNul
from app.referrals.states import EventType
from app.webhooks.states import DeliveryStatus


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Annotated[str, WithoutNul] = Field(
        min_length=1,
        max_length=2048,
        description="`https`, resolving only to public addresses (sandbox: `http` and "
        "loopback too), e.g. `https://crm.example.org/prap-webhooks`.",
        # A sandbox example: a harness's receiver on the same machine.
        examples=["http://127.0.0.1:9000/prap-webhooks"],
    )
    event_types: list[EventType] | None = Field(
        default=None,
        min_length=1,
        max_length=len(EventType),
        description="The history event types to receive; absent means all.",
    )


class SubscriptionOut(BaseModel):
    id: str
    url: str
    event_types: list[EventType] | None
    created_at: datetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(
        description="`whsec_` + base64 key for verifying signatures. Shown only here, once."
    )


class SubscriptionList(BaseModel):
    items: list[SubscriptionOut]


class DeliveryOut(BaseModel):
    id: str = Field(description="Also the `webhook-id` header, the same on every retry.")
    event_id: int
    event_type: EventType
    referral_id: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None = Field(description="`timeout`, `connection` or `address`, or null.")
    next_attempt_at: datetime | None = Field(description="Null unless pending.")
    delivered_at: datetime | None
    created_at: datetime


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


class DeliveryRunResult(BaseModel):
    attempted: int
    delivered: int
