"""The sandbox clock (api-contract.md, Sandbox): stored in the database, so that every replica
behind a load balancer reads the same instant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock, as_utc, real_now
from app.sandbox.models import SandboxClock

_ROW = 1


async def read_clock(session: AsyncSession, *, sandbox: bool) -> Clock:
    if sandbox:
        row = await session.get(SandboxClock, _ROW)
        if row is not None:
            return Clock.at(row.now)
    return Clock.at(real_now())


async def set_clock(session: AsyncSession, now: datetime) -> Clock:
    row = await session.get(SandboxClock, _ROW)
    if row is None:
        session.add(SandboxClock(id=_ROW, now=as_utc(now)))
    else:
        row.now = as_utc(now)
    await session.flush()
    return Clock.at(now)


async def reset_clock(session: AsyncSession) -> None:
    await session.execute(delete(SandboxClock))
