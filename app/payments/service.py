"""Payment runs (domain.md §8; JFS 6.01-6.03, 6.06): every validated, unpaid claim, the
recovery of paid claims voided since, and each contract's monthly service fee less that
month's service credits, in arrears, once the month's result is final.

Lines are written set-based with ``ON CONFLICT DO NOTHING`` against unique indexes (a claim
once; a contract's fee once per month), so a claim or a fee is paid in exactly one run even
when two runs race; a later run for the month carries only what is new.
"""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from sqlalchemy import exists, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.claims.models import Claim, ClaimEvent
from app.claims.transitions import TRANSITIONS, ClaimAction
from app.contracts.models import Contract
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.core.problems import DateOutOfRange, NotFound
from app.credits.schemas import MonthOut
from app.credits.service import contract_report, final_from, last_day, month_key, month_of
from app.payments.models import PaymentLine, PaymentRun
from app.payments.schemas import (
    FeeFigures,
    HeldFeeOut,
    PaymentLineKind,
    PaymentLineOut,
    PaymentRunOut,
    PaymentRunSummary,
    StandardFigures,
)
from app.programmes.models import Programme
from app.programmes.service import programme_params
from app.referrals.models import Referral

# The columns the set-based inserts of claim and recovery lines fill.
_LINE_COLUMNS = (
    "run_id",
    "kind",
    "claim_id",
    "contract_id",
    "provider_id",
    "month",
    "amount_pence",
    "deduction_pence",
)


def _insert_ignoring_duplicates(session: AsyncSession) -> Any:
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def _pay_claims(session: AsyncSession, run: PaymentRun, clock: Clock) -> None:
    """Claim the validated claims for this run first, with one conditional UPDATE: it locks
    each row and re-checks its status, so a claim voided by a back-out that commits first is
    skipped, a back-out that comes later finds it paid, and a racing run finds it taken.
    Lines and events are then written from the claims this run took."""
    pay = TRANSITIONS[ClaimAction.pay]
    await session.execute(
        update(Claim)
        .where(Claim.status.in_([str(s) for s in pay.sources_in_order]))
        .values(
            status=pay.target,
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
            _LINE_COLUMNS,
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
                literal(str(pay.event)),
                literal(str(pay.target)),
                literal(clock.now, ClaimEvent.occurred_at.type),
                literal(run.created_by),
                literal(str(pay.actor)),
                literal(None),
                literal({"payment_run_id": run.id}, ClaimEvent.data.type),
            )
            .where(taken)
            .order_by(Claim.id),
        )
    )


async def _recover_voided_claims(session: AsyncSession, run: PaymentRun) -> None:
    """domain.md §8: a paid attachment claim that a back-out voided (SES 3.15) is taken back
    by the next run, as a negative line; the unique index on recovery lines makes it once."""
    paid_line = exists().where(
        PaymentLine.kind == PaymentLineKind.claim, PaymentLine.claim_id == Claim.id
    )
    await session.execute(
        _insert_ignoring_duplicates(session)(PaymentLine)
        .from_select(
            _LINE_COLUMNS,
            select(
                literal(run.id),
                literal(str(PaymentLineKind.recovery)),
                Claim.id,
                Claim.contract_id,
                Claim.provider_id,
                literal(run.month),
                -Claim.amount_pence,
                literal(0),
            )
            .where(Claim.status == TRANSITIONS[ClaimAction.void].target, paid_line)
            .order_by(Claim.id),
        )
        .on_conflict_do_nothing()
    )


async def _unpaid_fee_months(session: AsyncSession, up_to: str) -> dict[str, list[str]]:
    """Per fee-funded contract, the months up to ``up_to`` in which referrals were made to it
    (JFS 6.03) and whose fee no run has paid yet."""
    month = month_key(session.get_bind().dialect.name).label("month")
    referred = (
        await session.execute(
            select(Referral.contract_id, month)
            .join(Contract, Contract.id == Referral.contract_id)
            .join(Programme, Programme.code == Contract.programme)
            .where(
                Programme.funds_service_fee.is_(True),
                Contract.monthly_service_fee_pence > 0,
                Referral.referral_date <= last_day(up_to),
            )
            .group_by(Referral.contract_id, month)
        )
    ).all()
    paid = {
        (row.contract_id, row.month)
        for row in await session.execute(
            select(PaymentLine.contract_id, PaymentLine.month).where(
                PaymentLine.kind == PaymentLineKind.service_fee
            )
        )
    }
    unpaid: dict[str, list[str]] = {}
    for contract_id, fee_month in sorted(referred):
        if (contract_id, fee_month) not in paid:
            unpaid.setdefault(contract_id, []).append(fee_month)
    return unpaid


def _figures(month: MonthOut, final_on: date) -> dict[str, Any]:
    return FeeFigures(
        css1=StandardFigures.model_validate(month.css1.model_dump()),
        css2=StandardFigures.model_validate(month.css2.model_dump()),
        deduction_percent=month.deduction_percent,
        final_from=final_on,
    ).model_dump(mode="json")


async def _pay_service_fees(
    session: AsyncSession, run: PaymentRun, clock: Clock
) -> list[HeldFeeOut]:
    """JFS 6.06, 6.09, domain.md §8-9: the fee is paid monthly in arrears and its deductions
    are never earned back, so a month's fee is paid only on its final figures. This run pays,
    per contract, every month up to its own whose result is final and whose fee is unpaid,
    and holds (and lists) the months still provisional."""
    held: list[HeldFeeOut] = []
    insert_ = _insert_ignoring_duplicates(session)
    for contract_id, fee_months in (await _unpaid_fee_months(session, run.month)).items():
        contract = await session.get(Contract, contract_id)
        assert contract is not None
        programme = await programme_params(session, contract.programme)
        report = await contract_report(session, clock, contract, fee_months[0], fee_months[-1])
        by_month = {row.month: row for row in report.months}
        for fee_month in fee_months:
            payable_from = final_from(fee_month, programme)
            if clock.today < payable_from:
                held.append(
                    HeldFeeOut(
                        contract_id=contract.id,
                        provider_id=contract.provider_id,
                        fee_month=fee_month,
                        payable_from=payable_from,
                    )
                )
                continue
            row = by_month[fee_month]
            await session.execute(
                insert_(PaymentLine)
                .values(
                    run_id=run.id,
                    kind=PaymentLineKind.service_fee,
                    claim_id=None,
                    contract_id=contract.id,
                    provider_id=contract.provider_id,
                    month=fee_month,
                    amount_pence=row.fee_payable_pence,
                    deduction_pence=row.deduction_pence,
                    figures=_figures(row, payable_from),
                )
                .on_conflict_do_nothing()
            )
    return held


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
        fee_month=line.month if fee else None,
        amount_pence=line.amount_pence,
        deduction_pence=line.deduction_pence if fee else None,
        figures=FeeFigures.model_validate(line.figures) if fee and line.figures else None,
    )


def _run_out(
    run: PaymentRun, lines: list[PaymentLine], provider_id: str | None = None
) -> PaymentRunOut:
    held = [HeldFeeOut.model_validate(h) for h in run.held_fees or []]
    if provider_id is not None:
        held = [h for h in held if h.provider_id == provider_id]
    return PaymentRunOut(
        id=run.id,
        month=run.month,
        created_at=run.created_at,
        lines=[_line_out(line) for line in lines],
        held_fees=held,
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
    await _recover_voided_claims(session, run)
    held = await _pay_service_fees(session, run, clock)
    run.held_fees = [h.model_dump(mode="json") for h in held]
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
    provider_id = principal.provider_id if principal.is_provider else None
    out = _run_out(run, await _lines(session, run.id, provider_id), provider_id)
    if provider_id is not None and not out.lines and not out.held_fees:
        raise NotFound("No such payment run.")
    return out


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
