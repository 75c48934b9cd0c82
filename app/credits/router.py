"""Service credits: the calculator, and a contract's live report (JSON or CSV)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import Response

from app.contracts import service as contracts
from app.contracts.schemas import WithoutNul
from app.core.auth import AnyPrincipal, Principal, Role, Scope, require
from app.core.deps import RequestClock, Session
from app.core.problems import FieldError, NotFound, ValidationProblem, problem_responses
from app.credits import service
from app.credits.calculator import Counts, MonthInput, previous_month
from app.credits.schemas import (
    CalculateRequest,
    ContractServiceCreditReport,
    Month,
    ServiceCreditReport,
)

router = APIRouter(tags=["service credits"])

Reader = Annotated[
    Principal,
    Depends(require(Role.admin, Role.post, Role.provider, scopes=(Scope.referrals, Scope.claims))),
]
MAX_MONTHS = 36


@router.get(
    "/v1/contracts/{id}/service-credits",
    operation_id="getContractServiceCredits",
    response_model=ContractServiceCreditReport,
    responses={
        200: {
            "description": "The report; `Accept: text/csv` gives one row per month and standard.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(NotFound),
    },
)
async def get_contract_service_credits(
    contract_id: Annotated[str, Path(alias="id", max_length=40), WithoutNul],
    principal: Reader,
    session: Session,
    clock: RequestClock,
    from_month: Annotated[
        Month | None,
        Query(
            alias="from",
            description="First month; default 11 before `to`. At most 36 months before `to` "
            "and not after it (otherwise 422 `validation-error`).",
        ),
    ] = None,
    to_month: Annotated[
        Month | None, Query(alias="to", description="Last month; default this month.")
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> ContractServiceCreditReport | Response:
    """CSS 1 and CSS 2 per cohort month from the referrals recorded (JFS 6.07-6.10, 7.44),
    with deductions from the monthly service fee; months whose deadlines are still running
    are provisional (`final: false`)."""
    contract = await contracts.get_contract(session, principal, contract_id)
    last = to_month or service.month_of(clock.today)
    first = from_month
    if first is None:
        first = last
        for _ in range(11):
            first = previous_month(first)
    if first > last or len(service.months_between(first, last)) > MAX_MONTHS:
        raise ValidationProblem(
            errors=[FieldError(field="from", message=f"from..to: 1 to {MAX_MONTHS} months.")]
        )
    report = await service.contract_report(session, clock, contract, first, last)
    if accept and "text/csv" in accept:
        return Response(service.report_csv(report), media_type="text/csv; charset=utf-8")
    return report


@router.post(
    "/v1/service-credits/calculate",
    operation_id="calculateServiceCredits",
    response_model=ServiceCreditReport,
)
async def calculate_service_credits(
    body: CalculateRequest, _principal: AnyPrincipal
) -> ServiceCreditReport:
    """Service credits from counts you give (JFS 6.07-6.10): RAG per standard, deductions
    per standard and in total, the fee payable, and the termination flags. The month before
    the first row counts as green."""
    months = [
        MonthInput(
            month=m.month,
            css1=Counts(m.css1.eligible, m.css1.met),
            css2=Counts(m.css2.eligible, m.css2.met),
        )
        for m in body.months
    ]
    return service.calculate_report(body.monthly_service_fee_pence, months)
