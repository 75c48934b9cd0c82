"""Performance per contract: CSS 1 and CSS 2 by cohort month with RAG, deductions and the
termination flags (JFS 6.07-6.10, 7.44), as a chart and a table, and the MI CSV."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from app.console.chart import credits_chart
from app.console.routing import ContractReader, console_router
from app.console.templating import render
from app.contracts import service as contracts
from app.contracts.models import Contract
from app.contracts.schemas import ContractOut
from app.core.deps import RequestClock, Session
from app.core.problems import FieldError, ValidationProblem
from app.credits import service as credits
from app.credits.calculator import previous_month
from app.credits.schemas import ContractServiceCreditReport, Month

router = console_router()

Id = Annotated[str, Path(max_length=40)]
MonthQuery = Annotated[Month | None, Query()]
# As the API's report: twelve months to this one by default, at most three years.
DEFAULT_MONTHS = 12
MAX_MONTHS = 36


@router.get("/contracts")
async def contracts_page(request: Request, user: ContractReader, session: Session) -> HTMLResponse:
    items: list[ContractOut] = []
    cursor: str | None = None
    for _ in range(10):
        page = await contracts.list_contracts(
            session, user.principal, provider_id=None, programme=None, cursor=cursor, limit=100
        )
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return render(request, "contracts.html", {"contracts": items}, user=user)


@dataclass(frozen=True, slots=True)
class Report:
    contract: Contract
    credits: ContractServiceCreditReport
    first: str
    last: str


async def contract_report(
    contract_id: Id,
    user: ContractReader,
    session: Session,
    clock: RequestClock,
    from_month: Annotated[MonthQuery, Query(alias="from")] = None,
    to_month: Annotated[MonthQuery, Query(alias="to")] = None,
) -> Report:
    """The contract's service-credit report for the months asked (tenancy as the API's)."""
    contract = await contracts.get_contract(session, user.principal, contract_id)
    last = to_month or credits.month_of(clock.today)
    first = from_month
    if first is None:
        first = last
        for _ in range(DEFAULT_MONTHS - 1):
            first = previous_month(first)
    if first > last or len(credits.months_between(first, last)) > MAX_MONTHS:
        raise ValidationProblem(
            errors=[FieldError(field="from", message=f"from..to: 1 to {MAX_MONTHS} months.")]
        )
    report = await credits.contract_report(session, clock, contract, first, last)
    return Report(contract, report, first, last)


ContractReport = Annotated[Report, Depends(contract_report)]


@router.get("/contracts/{contract_id}")
async def performance_page(
    request: Request, user: ContractReader, found: ContractReport
) -> HTMLResponse:
    report, first, last = found.credits, found.first, found.last
    chart = credits_chart(
        report.months,
        title=f"CSS 1 and CSS 2 by month, {first} to {last}, with deductions",
    )
    return render(
        request,
        "performance.html",
        {
            "contract": found.contract,
            "report": report,
            "chart": Markup(chart),  # noqa: S704 - built by credits_chart, every text escaped
            "first": first,
            "last": last,
            "flagged": [m for m in report.months if m.termination_threshold or m.termination_right],
        },
        user=user,
    )


@router.get("/contracts/{contract_id}/service-credits.csv")
async def performance_csv(found: ContractReport) -> Response:
    first, last = found.first, found.last
    return Response(
        credits.report_csv(found.credits),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="service-credits-{found.contract.id}-{first}-{last}.csv"'
            ),
            "Cache-Control": "no-store",
        },
    )
