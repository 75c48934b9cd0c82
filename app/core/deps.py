"""Typed FastAPI dependencies shared by the feature routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.settings import Settings
from app.core.unit_of_work import get_session
from app.sandbox.service import read_clock

Session = Annotated[AsyncSession, Depends(get_session)]


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings_from_app)]


async def get_clock(request: Request, session: Session, settings: AppSettings) -> Clock:
    """One reading of the clock per request: every rule in the request sees the same now."""
    cached: Clock | None = getattr(request.state, "clock", None)
    if cached is None:
        cached = await read_clock(session, sandbox=settings.sandbox)
        request.state.clock = cached
    return cached


RequestClock = Annotated[Clock, Depends(get_clock)]


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The resource's `ETag`; a stale one is refused with 412.",
    ),
]

IfNoneMatch = Annotated[
    str | None,
    Header(
        alias="If-None-Match",
        max_length=200,
        description="An `ETag` you hold; 304 with no body when it is still the current one.",
    ),
]
