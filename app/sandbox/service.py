"""The sandbox clock (api-contract.md, Sandbox): stored in the database, so that every replica
behind a load balancer reads the same instant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Role, mint_token
from app.core.clock import Clock, as_utc, real_now
from app.core.problems import FieldError, NotFound, ValidationProblem
from app.core.settings import SANDBOX_JWT_SECRET, Settings
from app.sandbox import repository


async def read_clock(session: AsyncSession, *, sandbox: bool) -> Clock:
    if sandbox and (now := await repository.stored_now(session)) is not None:
        return Clock.at(now)
    return Clock.at(real_now())


async def set_clock(session: AsyncSession, now: datetime) -> Clock:
    await repository.store_now(session, as_utc(now))
    return Clock.at(now)


async def reset_clock(session: AsyncSession) -> None:
    await repository.clear(session)


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
