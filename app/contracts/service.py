"""Contracts (domain.md §7-8): create and read, and what other features need of a contract."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts import repository
from app.contracts.models import Contract
from app.contracts.schemas import ContractCreate, ContractOut
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.core.pagination import Page
from app.core.problems import NotFound


async def create_contract(session: AsyncSession, clock: Clock, body: ContractCreate) -> ContractOut:
    contract = Contract(id=new_id(), created_at=clock.now, **body.model_dump())
    await repository.add(session, contract)
    return ContractOut.model_validate(contract)


async def list_contracts(
    session: AsyncSession,
    principal: Principal,
    *,
    provider_id: str | None,
    programme: str | None,
    cursor: str | None,
    limit: int,
) -> Page[ContractOut]:
    filters = {"provider_id": provider_id, "programme": programme}
    page, next_cursor = await repository.page_of(
        session, principal, filters=filters, cursor=cursor, limit=limit
    )
    return Page(items=[ContractOut.model_validate(c) for c in page], next_cursor=next_cursor)


async def get_contract(session: AsyncSession, principal: Principal, contract_id: str) -> Contract:
    return await repository.get_readable(session, principal, contract_id)


# --- for other features ----------------------------------------------------------------------


async def contract_by_id(session: AsyncSession, contract_id: str) -> ContractOut:
    """A contract another record points at (a foreign key holds it, so it exists)."""
    contract = await repository.by_id(session, contract_id)
    if contract is None:
        raise NotFound("No such contract.")
    return ContractOut.model_validate(contract)


async def contract_in_force(
    session: AsyncSession, *, provider_id: str, programme: str, on: date
) -> str | None:
    """The id of the provider's contract for the programme in force on ``on`` (referrals: a
    new referral's contract)."""
    return await repository.contract_in_force(
        session, provider_id=provider_id, programme=programme, on=on
    )


async def charging_service_fees(
    session: AsyncSession, programmes: Sequence[str]
) -> list[ContractOut]:
    """Contracts on these programmes with a monthly service fee (payment runs, JFS 6.01)."""
    return [
        ContractOut.model_validate(c)
        for c in await repository.charging_service_fees(session, programmes)
    ]


async def past_retention(session: AsyncSession, as_of: date) -> list[str]:
    """Ids of the contracts whose records retention ended before ``as_of`` (JFS 1.33)."""
    return await repository.past_retention(session, as_of)
