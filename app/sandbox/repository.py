"""The sandbox clock's one row (api-contract.md, Sandbox): in the database, so that every
replica behind a load balancer reads the same instant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.sandbox.models import SandboxClock

_ROW = 1


async def stored_now(session: AsyncSession) -> datetime | None:
    """The instant the sandbox clock was set to; None when it is not set."""
    row = await session.get(SandboxClock, _ROW)
    return None if row is None else row.now


async def store_now(session: AsyncSession, now: datetime) -> None:
    row = await session.get(SandboxClock, _ROW)
    if row is None:
        session.add(SandboxClock(id=_ROW, now=now))
    else:
        row.now = now
    await session.flush()


async def clear(session: AsyncSession) -> None:
    await session.execute(delete(SandboxClock))
