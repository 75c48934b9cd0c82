from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.referrals.schemas import Actor


class ReadOut(BaseModel):
    at: datetime
    actor: Actor
    operation: str = Field(description="The operation id that answered, e.g. `getReferral`.")
    referral_ids: list[str] = Field(description="Every referral the response showed.")


class ReadPage(BaseModel):
    items: list[ReadOut]
    next_cursor: str | None
