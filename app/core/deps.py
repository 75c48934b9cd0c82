"""Typed FastAPI dependencies shared by the feature routers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock, real_now
from app.core.settings import Settings
from app.core.unit_of_work import get_session

Session = Annotated[AsyncSession, Depends(get_session)]


async def get_settings_from_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings_from_app)]


# How a request reads the time. Core knows only the real clock; the sandbox registers its own
# (stored in the database, api-contract.md Sandbox) at app creation, in ``app.main``.
ClockReader = Callable[[AsyncSession], Awaitable[Clock]]


async def real_clock(_session: AsyncSession) -> Clock:
    return Clock.at(real_now())


def use_clock_reader(app: FastAPI, reader: ClockReader) -> None:
    app.state.read_clock = reader


async def clock_of(request: Request) -> Clock:
    """One reading of the clock per request: every rule in the request sees the same now."""
    cached: Clock | None = getattr(request.state, "clock", None)
    if cached is None:
        reader: ClockReader = getattr(request.app.state, "read_clock", real_clock)
        cached = await reader(request.state.db)
        request.state.clock = cached
    return cached


async def get_clock(request: Request) -> Clock:
    return await clock_of(request)


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
