"""Payment runs (domain.md §8; JFS 6.01-6.03): every validated, unpaid claim, and each
contract's monthly service fee less that month's service credits.

Lines are written set-based with ``ON CONFLICT DO NOTHING`` against unique indexes (a claim
once; a contract's fee once per month), so a claim or a fee is paid in exactly one run even
when two runs race; a later run for the month carries only what is new.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import and_, exists, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.claims.models import Claim, ClaimEvent
from app.claims.states import ClaimEventType, ClaimStatus
from app.contracts.models import Contract
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.core.problems import DateOutOfRange, NotFound
from app.credits.service import contract_report, first_day, last_day, month_of
from app.payments.models import PaymentLine, PaymentRun
from app.payments.schemas import (
    PaymentLineKind,
    PaymentLineOut,
    PaymentRunOut,
    PaymentRunSummary,
)
from app.programmes.models import Programme
from app.referrals.models import Referral


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _pay_claims(session: AsyncSession, run: PaymentRun, clock: Clock) -> None:
    """Claim the validated claims for this run first, with one conditional UPDATE: it locks
    each row and re-checks its status, so a claim voided by a back-out that commits first is
    skipped, a back-out that comes later finds it paid, and a racing run finds it taken.
    Lines and events are then written from the claims this run took."""
    await session.execute(
        update(Claim)
        .where(Claim.status == ClaimStatus.validated)
        .values(
            status=ClaimStatus.paid,
            paid_at=clock.now,
            payment_run_id=run.id,
            updated_at=clock.now,
            version=Claim.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    taken = Claim.payment_run_id == run.id
    await session.execute(
        insert(PaymentLine).from_select(
            [
                "run_id",
                "kind",
                "claim_id",
                "contract_id",
                "provider_id",
                "month",
                "amount_pence",
                "deduction_pence",
            ],
            select(
                literal(run.id),
                literal(str(PaymentLineKind.claim)),
                Claim.id,
                Claim.contract_id,
                Claim.provider_id,
                literal(run.month),
                Claim.amount_pence,
                literal(0),
            )
            .where(taken)
            .order_by(Claim.id),
        )
    )
    await session.execute(
        insert(ClaimEvent).from_select(
            [
                "claim_id",
                "type",
                "status",
                "occurred_at",
                "actor_sub",
                "actor_role",
                "actor_provider_id",
                "data",
            ],
            select(
                Claim.id,
                literal(str(ClaimEventType.paid)),
                literal(str(ClaimStatus.paid)),
                literal(clock.now, ClaimEvent.occurred_at.type),
                literal(run.created_by),
                literal("post"),
                literal(None),
                literal({"payment_run_id": run.id}, ClaimEvent.data.type),
            )
            .where(taken)
            .order_by(Claim.id),
        )
    )


async def _pay_service_fees(session: AsyncSession, run: PaymentRun, clock: Clock) -> None:
    first, last = first_day(run.month), last_day(run.month)
    # JFS 6.03: the fee is payable for each month in which referrals are made.
    referred_in_month = exists().where(
        Referral.contract_id == Contract.id,
        Referral.referral_date >= first,
        Referral.referral_date <= last,
    )
    already_paid = exists().where(
        PaymentLine.kind == PaymentLineKind.service_fee,
        PaymentLine.contract_id == Contract.id,
        PaymentLine.month == run.month,
    )
    contracts = (
        await session.scalars(
            select(Contract)
            .join(Programme, Programme.code == Contract.programme)
            .where(
                Programme.funds_service_fee.is_(True),
                Contract.monthly_service_fee_pence > 0,
                and_(Contract.start_date <= last, Contract.end_date >= first),
                referred_in_month,
                ~already_paid,
            )
            .order_by(Contract.id)
        )
    ).all()
    insert_ = _insert_ignoring_duplicates(session)
    for contract in contracts:
        report = await contract_report(session, clock, contract, run.month, run.month)
        month = report.months[0]
        await session.execute(
            insert_(PaymentLine)
            .values(
                run_id=run.id,
                kind=PaymentLineKind.service_fee,
                claim_id=None,
                contract_id=contract.id,
                provider_id=contract.provider_id,
                month=run.month,
                amount_pence=month.fee_payable_pence,
                deduction_pence=month.deduction_pence,
            )
            .on_conflict_do_nothing()
        )


async def _lines(session: AsyncSession, run_id: str, provider_id: str | None) -> list[PaymentLine]:
    statement = select(PaymentLine).where(PaymentLine.run_id == run_id)
    if provider_id is not None:
        statement = statement.where(PaymentLine.provider_id == provider_id)
    return list((await session.scalars(statement.order_by(PaymentLine.id))).all())


def _line_out(line: PaymentLine) -> PaymentLineOut:
    fee = line.kind == PaymentLineKind.service_fee
    return PaymentLineOut(
        kind=PaymentLineKind(line.kind),
        claim_id=line.claim_id,
        contract_id=line.contract_id,
        provider_id=line.provider_id,
        month=line.month,
        amount_pence=line.amount_pence,
        deduction_pence=line.deduction_pence if fee else None,
    )


def _run_out(run: PaymentRun, lines: list[PaymentLine]) -> PaymentRunOut:
    return PaymentRunOut(
        id=run.id,
        month=run.month,
        created_at=run.created_at,
        lines=[_line_out(line) for line in lines],
        total_pence=sum(line.amount_pence for line in lines),
    )


async def create_payment_run(
    session: AsyncSession, clock: Clock, principal: Principal, month: str
) -> PaymentRunOut:
    if month > month_of(clock.today):
        raise DateOutOfRange("A payment run may be made for any month up to the current one.")
    run = PaymentRun(
        id=new_id(), month=month, created_at=clock.now, created_by=principal.sub, total_pence=0
    )
    session.add(run)
    await session.flush()
    await _pay_claims(session, run, clock)
    await _pay_service_fees(session, run, clock)
    run.total_pence = int(
        await session.scalar(
            select(func.coalesce(func.sum(PaymentLine.amount_pence), 0)).where(
                PaymentLine.run_id == run.id
            )
        )
        or 0
    )
    await session.flush()
    return _run_out(run, await _lines(session, run.id, None))


async def get_payment_run(
    session: AsyncSession, principal: Principal, run_id: str
) -> PaymentRunOut:
    """A run; a provider sees its own lines only (its remittance), and a run with none of
    them does not exist for it."""
    run = await session.get(PaymentRun, run_id)
    if run is None:
        raise NotFound("No such payment run.")
    lines = await _lines(session, run.id, principal.provider_id if principal.is_provider else None)
    if principal.is_provider and not lines:
        raise NotFound("No such payment run.")
    return _run_out(run, lines)


async def list_payment_runs(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[PaymentRunSummary], str | None]:
    statement = select(PaymentRun)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(PaymentRun.id > after)
    page, next_cursor = await fetch_page(
        session, statement.order_by(PaymentRun.id), limit, lambda r: encode_cursor(r.id)
    )
    items = [
        PaymentRunSummary(
            id=r.id, month=r.month, created_at=r.created_at, total_pence=r.total_pence
        )
        for r in page
    ]
    return items, next_cursor


REMITTANCE_COLUMNS = (
    "run_id",
    "run_month",
    "kind",
    "claim_id",
    "contract_id",
    "provider_id",
    "month",
    "amount_pence",
    "deduction_pence",
)


def remittance_csv(run: PaymentRunOut) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REMITTANCE_COLUMNS)
    for line in run.lines:
        writer.writerow(
            (
                run.id,
                run.month,
                line.kind,
                line.claim_id or "",
                line.contract_id,
                line.provider_id,
                line.month,
                line.amount_pence,
                "" if line.deduction_pence is None else line.deduction_pence,
            )
        )
    return buffer.getvalue()
