"""Payment run and line queries. Lines are written with ``ON CONFLICT DO NOTHING`` against
the unique indexes (a claim paid once, recovered once; a contract's fee once per month), so
racing runs cannot pay anything twice. A provider reads only its own lines (its
remittance)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.queries import page_by_id
from app.payments.models import PaymentLine, PaymentRun
from app.payments.schemas import PaymentLineKind


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def add_run(session: AsyncSession, run: PaymentRun) -> None:
    session.add(run)
    await session.flush()


async def get_run(session: AsyncSession, run_id: str) -> PaymentRun | None:
    return await session.get(PaymentRun, run_id)


async def add_lines(session: AsyncSession, lines: Sequence[dict[str, Any]]) -> None:
    """Insert lines, leaving out any that a unique index says is there already (a claim
    paid or recovered, a fee month paid, by this run or a racing one)."""
    if lines:
        insert_ = _insert_ignoring_duplicates(session)
        # executemany: batched by the driver, whatever the number of lines.
        await session.execute(insert_(PaymentLine).on_conflict_do_nothing(), list(lines))


async def paid_fee_months(session: AsyncSession) -> set[tuple[str, str]]:
    """(contract id, fee month) of every service fee a run has paid."""
    statement = select(PaymentLine.contract_id, PaymentLine.month).where(
        PaymentLine.kind == PaymentLineKind.service_fee
    )
    return {(row.contract_id, row.month) for row in await session.execute(statement)}


async def run_total(session: AsyncSession, run_id: str) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(PaymentLine.amount_pence), 0)).where(
            PaymentLine.run_id == run_id
        )
    )
    return int(total or 0)


async def lines_of(
    session: AsyncSession, run_id: str, provider_id: str | None
) -> list[PaymentLine]:
    statement = select(PaymentLine).where(PaymentLine.run_id == run_id)
    if provider_id is not None:
        statement = statement.where(PaymentLine.provider_id == provider_id)
    return list((await session.scalars(statement.order_by(PaymentLine.id))).all())


async def page_of_runs(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[PaymentRun], str | None]:
    return await page_by_id(session, select(PaymentRun), PaymentRun.id, cursor=cursor, limit=limit)
