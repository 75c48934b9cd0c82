"""Contract queries. Every read starts from ``readable_contracts``: tenancy in one place."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract
from app.core.auth import Principal


def readable_contracts(principal: Principal) -> Select[Contract]:
    statement = select(Contract)
    if principal.is_provider:
        statement = statement.where(Contract.provider_id == principal.provider_id)
    return statement


async def contract_in_force(
    session: AsyncSession, *, provider_id: str, programme: str, on: date
) -> Contract | None:
    """The provider's contract for the programme in force on ``on``; the latest-starting one
    when periods overlap."""
    statement = (
        select(Contract)
        .where(
            Contract.provider_id == provider_id,
            Contract.programme == programme,
            Contract.start_date <= on,
            Contract.end_date >= on,
        )
        .order_by(Contract.start_date.desc(), Contract.id.desc())
        .limit(1)
    )
    return (await session.execute(statement)).scalar_one_or_none()
