"""Contract queries. Every read starts from ``readable_contracts``: tenancy in one place."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.contracts.models import Contract
from app.core import driver
from app.core.auth import Principal
from app.core.queries import one_or_not_found, page_by_id, visible_to, where_equal


def readable_contracts(principal: Principal) -> Select[Contract]:
    return visible_to(select(Contract), Contract.provider_id, principal)


async def add(session: AsyncSession, contract: Contract) -> None:
    session.add(contract)
    await session.flush()


async def get_readable(session: AsyncSession, principal: Principal, contract_id: str) -> Contract:
    statement = readable_contracts(principal).where(Contract.id == contract_id)
    return await one_or_not_found(session, statement, "No such contract.")


async def page_of(
    session: AsyncSession,
    principal: Principal,
    *,
    filters: dict[str, str | None],
    cursor: str | None,
    limit: int,
) -> tuple[list[Contract], str | None]:
    """Readable contracts matching every given column filter, by id, a page at a time."""
    statement = where_equal(readable_contracts(principal), Contract, filters)
    return await page_by_id(session, statement, Contract.id, cursor=cursor, limit=limit)


# On the hot path (every new referral): on the session's driver connection.
_IN_FORCE = driver.DriverStatement(
    select(Contract.id)
    .where(
        Contract.provider_id == bindparam("provider_id"),
        Contract.programme == bindparam("programme"),
        Contract.start_date <= bindparam("on"),
        Contract.end_date >= bindparam("on"),
    )
    .order_by(Contract.start_date.desc(), Contract.id.desc())
    .limit(1)
)


async def contract_in_force(
    session: AsyncSession, *, provider_id: str, programme: str, on: date
) -> str | None:
    """The id of the provider's contract for the programme in force on ``on``; the
    latest-starting one when periods overlap."""
    params = {"provider_id": provider_id, "programme": programme, "on": on}
    row = await driver.fetch_row(session, _IN_FORCE, params)
    return None if row is None else str(row.id)


async def by_id(session: AsyncSession, contract_id: str) -> Contract | None:
    return await session.get(Contract, contract_id)


async def charging_service_fees(session: AsyncSession, programmes: Sequence[str]) -> list[Contract]:
    """Contracts on these programmes with a monthly service fee to pay (JFS 6.01)."""
    statement = (
        select(Contract)
        .where(Contract.programme.in_(programmes), Contract.monthly_service_fee_pence > 0)
        .order_by(Contract.id)
    )
    return list((await session.scalars(statement)).all())


async def past_retention(session: AsyncSession, as_of: date) -> list[str]:
    """Ids of contracts whose Records Retention End Date is before ``as_of`` (JFS 1.33)."""
    statement = (
        select(Contract.id).where(Contract.records_retention_end_date < as_of).order_by(Contract.id)
    )
    return list((await session.scalars(statement)).all())
