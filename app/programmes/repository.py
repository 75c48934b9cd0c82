"""Programme queries: the catalogue is reference data, read whole (domain.md §7)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.programmes.models import Programme


async def all_programmes(session: AsyncSession) -> list[Programme]:
    statement = select(Programme).order_by(Programme.code)
    return list((await session.scalars(statement)).all())
