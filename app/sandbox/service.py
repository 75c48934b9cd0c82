"""The sandbox clock (api-contract.md, Sandbox): stored in the database, so that every replica
behind a load balancer reads the same instant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Role, mint_token
from app.core.clock import Clock, as_utc, real_now
from app.core.problems import FieldError, NotFound, ValidationProblem
from app.core.settings import SANDBOX_JWT_SECRET, Settings
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


def sandbox_token(
    settings: Settings, *, sub: str, role: Role, provider_id: str | None, scopes: list[str]
) -> str:
    """A token for any role, signed with the sandbox's HS256 key (the sandbox token endpoint
    and the console's sandbox sign-in both mint through here)."""
    if settings.jwt_public_key:
        raise NotFound("Sandbox tokens are minted only when tokens are HS256.")
    if role is Role.provider and not provider_id:
        raise ValidationProblem(
            errors=[FieldError(field="provider_id", message="Required for role provider.")]
        )
    return mint_token(
        sub=sub,
        role=role,
        key=settings.jwt_secret or SANDBOX_JWT_SECRET,
        provider_id=provider_id,
        scopes=scopes,
    )
