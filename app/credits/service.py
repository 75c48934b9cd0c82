"""Live customer service standards for a contract, from the referrals recorded (domain.md §9).

Cohort counts come from one SQL aggregate over the contract's referrals (never loaded into
Python), which the referrals feature runs for us (``referrals.service.cohort_counts``).
"""

from __future__ import annotations

import csv
import io
from calendar import monthrange
from datetime import date, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.calendar import nth_working_day_after
from app.core.clock import Clock
from app.credits.calculator import (
    ROLLING_WINDOW,
    Counts,
    MonthInput,
    MonthResult,
    Standard,
    calculate,
    previous_month,
)
from app.credits.schemas import (
    ContractServiceCreditReport,
    MonthOut,
    ServiceCreditReport,
    StandardOut,
)
from app.programmes.service import ProgrammeParams, programme_params
from app.referrals import service as referrals


class PricedContract(Protocol):
    """What a report needs of a contract (a contract row or its representation)."""

    id: str

    @property
    def programme(self) -> str: ...  # read-only: a programme code enum is a str too

    monthly_service_fee_pence: int


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def first_day(month: str) -> date:
    return date(int(month[:4]), int(month[5:7]), 1)


def last_day(month: str) -> date:
    year, number = int(month[:4]), int(month[5:7])
    return date(year, number, monthrange(year, number)[1])


def months_between(first: str, last: str) -> list[str]:
    months = [last]
    while months[-1] > first:
        months.append(previous_month(months[-1]))
    return list(reversed(months))


async def cohort_counts(
    session: AsyncSession, contract_id: str, first: str, last: str
) -> dict[str, MonthInput]:
    """CSS 1 and CSS 2 counts per cohort month (JFS 7.44)."""
    rows = await referrals.cohort_counts(session, contract_id, first_day(first), last_day(last))
    return {
        row.month: MonthInput(
            month=row.month,
            css1=Counts(row.css1_eligible, row.css1_met),
            css2=Counts(row.css2_eligible, row.css2_met),
        )
        for row in rows
    }


def final_from(month: str, programme: ProgrammeParams) -> date:
    """The day a month's result turns final: the day after the later of its CSS 1 and CSS 2
    deadlines for a referral made on its last day (domain.md §9). Before it, a start or an
    outcome may still be recorded in time and turn the month green or red."""
    days = [
        d
        for d in (programme.initial_meeting_working_days, programme.outcome_recorded_working_days)
        if d is not None
    ]
    closing = last_day(month)
    if days:
        closing = nth_working_day_after(closing, max(days))
    return closing + timedelta(days=1)


def cohort_final(month: str, programme: ProgrammeParams, today: date) -> bool:
    """Final once every deadline of the month's cohort has passed (domain.md §9)."""
    return today >= final_from(month, programme)


def to_out(result: MonthResult, final: bool | None = None) -> MonthOut:
    def standard(s: Standard) -> StandardOut:
        r = result.css1 if s is Standard.css1 else result.css2
        return StandardOut(
            eligible=r.eligible,
            met=r.met,
            percent=r.percent,
            rag=r.rag,
            deduction_percent=r.deduction_percent,
        )

    return MonthOut(
        month=result.month,
        css1=standard(Standard.css1),
        css2=standard(Standard.css2),
        deduction_percent=result.deduction_percent,
        deduction_pence=result.deduction_pence,
        fee_payable_pence=result.fee_payable_pence,
        termination_threshold=result.termination_threshold,
        termination_right=result.termination_right,
        final=final,
    )


def calculate_report(fee_pence: int, months: list[MonthInput]) -> ServiceCreditReport:
    results = [to_out(r) for r in calculate(fee_pence, months)]
    return ServiceCreditReport(
        months=results, total_deduction_pence=sum(r.deduction_pence for r in results)
    )


async def contract_report(
    session: AsyncSession, clock: Clock, contract: PricedContract, first: str, last: str
) -> ContractServiceCreditReport:
    # Eleven months before ``first`` give context: runs of red or amber and the rolling
    # twelve months (JFS 6.07-6.10) do not stop at the edge of the report.
    context_start = first
    for _ in range(ROLLING_WINDOW - 1):
        context_start = previous_month(context_start)
    counts = await cohort_counts(session, contract.id, context_start, last)
    empty = Counts(0, 0)

    def row(month: str) -> MonthInput:
        return counts.get(month) or MonthInput(month=month, css1=empty, css2=empty)

    history = [row(m) for m in months_between(context_start, previous_month(first))]
    months = [row(m) for m in months_between(first, last)]
    programme = await programme_params(session, contract.programme)
    results = calculate(contract.monthly_service_fee_pence, months, history)
    rows = [to_out(r, cohort_final(r.month, programme, clock.today)) for r in results]
    return ContractServiceCreditReport(
        contract_id=contract.id,
        monthly_service_fee_pence=contract.monthly_service_fee_pence,
        months=rows,
        total_deduction_pence=sum(r.deduction_pence for r in rows),
    )


CSV_COLUMNS = (
    "contract_id",
    "month",
    "standard",
    "eligible",
    "met",
    "percent",
    "rag",
    "standard_deduction_percent",
    "month_deduction_percent",
    "month_deduction_pence",
    "fee_payable_pence",
    "termination_threshold",
    "termination_right",
    "final",
)


def report_csv(report: ContractServiceCreditReport) -> str:
    """MI export: one row per month and standard."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for month in report.months:
        for name, result in (("css1", month.css1), ("css2", month.css2)):
            writer.writerow(
                (
                    report.contract_id,
                    month.month,
                    name,
                    result.eligible,
                    result.met,
                    result.percent or "",
                    result.rag,
                    result.deduction_percent,
                    month.deduction_percent,
                    month.deduction_pence,
                    month.fee_payable_pence,
                    str(month.termination_threshold).lower(),
                    str(month.termination_right).lower(),
                    str(month.final).lower(),
                )
            )
    return buffer.getvalue()
