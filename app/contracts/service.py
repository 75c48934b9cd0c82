from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract
from app.contracts.repository import readable_contracts
from app.contracts.schemas import ContractCreate, ContractOut
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.core.pagination import Page, decode_cursor, encode_cursor, fetch_page
from app.core.problems import NotFound


async def create_contract(session: AsyncSession, clock: Clock, body: ContractCreate) -> ContractOut:
    contract = Contract(id=new_id(), created_at=clock.now, **body.model_dump())
    session.add(contract)
    await session.flush()
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
    statement = readable_contracts(principal)
    if provider_id is not None:
        statement = statement.where(Contract.provider_id == provider_id)
    if programme is not None:
        statement = statement.where(Contract.programme == programme)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(Contract.id > after)
    page, next_cursor = await fetch_page(
        session, statement.order_by(Contract.id), limit, lambda c: encode_cursor(c.id)
    )
    return Page(items=[ContractOut.model_validate(c) for c in page], next_cursor=next_cursor)


async def get_contract(session: AsyncSession, principal: Principal, contract_id: str) -> Contract:
    statement = readable_contracts(principal).where(Contract.id == contract_id)
    contract = (await session.scalars(statement)).one_or_none()
    if contract is None:
        raise NotFound("No such contract.")
    return contract
