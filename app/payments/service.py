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
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.claims import service as claims
from app.contracts import service as contracts
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.core.problems import DateOutOfRange, NotFound
from app.credits.schemas import MonthOut
from app.credits.service import contract_report, final_from, last_day, month_of
from app.payments import repository
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
from app.programmes.service import funding_service_fee, programme_params
from app.referrals import service as referrals


def _claim_lines(
    run: PaymentRun, kind: PaymentLineKind, claimed: Sequence[claims.ClaimLine], sign: int
) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run.id,
            "kind": str(kind),
            "claim_id": c.claim_id,
            "contract_id": c.contract_id,
            "provider_id": c.provider_id,
            "month": run.month,
            "amount_pence": sign * c.amount_pence,
            "deduction_pence": 0,
        }
        for c in claimed
    ]


async def _pay_claims(session: AsyncSession, run: PaymentRun, clock: Clock) -> None:
    """The claims service takes every validated claim for this run, race-safe (a claim
    voided by a back-out that commits first is skipped; a racing run finds it taken); a
    line is written for each claim it took."""
    paid = await claims.pay_claims(session, clock, run.id, run.created_by)
    await repository.add_lines(session, _claim_lines(run, PaymentLineKind.claim, paid, 1))


async def _recover_voided_claims(session: AsyncSession, run: PaymentRun) -> None:
    """domain.md §8: a paid attachment claim that a back-out voided (SES 3.15) is taken back
    by the next run, as a negative line; the unique index on recovery lines makes it once."""
    voided = await claims.voided_after_payment(session)
    await repository.add_lines(session, _claim_lines(run, PaymentLineKind.recovery, voided, -1))


async def _unpaid_fee_months(session: AsyncSession, up_to: str) -> dict[str, list[str]]:
    """Per fee-funded contract, the months up to ``up_to`` in which referrals were made to it
    (JFS 6.03) and whose fee no run has paid yet."""
    charging = await contracts.charging_service_fees(session, await funding_service_fee(session))
    referred = await referrals.referral_months(session, [c.id for c in charging], last_day(up_to))
    paid = await repository.paid_fee_months(session)
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
    for contract_id, fee_months in (await _unpaid_fee_months(session, run.month)).items():
        contract = await contracts.contract_by_id(session, contract_id)
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
            await repository.add_lines(
                session,
                [
                    {
                        "run_id": run.id,
                        "kind": str(PaymentLineKind.service_fee),
                        "claim_id": None,
                        "contract_id": contract.id,
                        "provider_id": contract.provider_id,
                        "month": fee_month,
                        "amount_pence": row.fee_payable_pence,
                        "deduction_pence": row.deduction_pence,
                        "figures": _figures(row, payable_from),
                    }
                ],
            )
    return held


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
    await repository.add_run(session, run)
    await _pay_claims(session, run, clock)
    await _recover_voided_claims(session, run)
    held = await _pay_service_fees(session, run, clock)
    run.held_fees = [h.model_dump(mode="json") for h in held]
    run.total_pence = await repository.run_total(session, run.id)
    await session.flush()
    return _run_out(run, await repository.lines_of(session, run.id, None))


async def get_payment_run(
    session: AsyncSession, principal: Principal, run_id: str
) -> PaymentRunOut:
    """A run; a provider sees its own lines only (its remittance), and a run with none of
    them does not exist for it."""
    run = await repository.get_run(session, run_id)
    if run is None:
        raise NotFound("No such payment run.")
    provider_id = principal.provider_id if principal.is_provider else None
    out = _run_out(run, await repository.lines_of(session, run.id, provider_id), provider_id)
    if provider_id is not None and not out.lines and not out.held_fees:
        raise NotFound("No such payment run.")
    return out


async def list_payment_runs(
    session: AsyncSession, *, cursor: str | None, limit: int
) -> tuple[list[PaymentRunSummary], str | None]:
    page, next_cursor = await repository.page_of_runs(session, cursor=cursor, limit=limit)
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
