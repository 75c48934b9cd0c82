"""Payment runs (api-contract.md, Claims and payments) and remittance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from fastapi.responses import Response

from app.contracts.schemas import WithoutNul
from app.core.auth import Principal, Role, Scope, require
from app.core.deps import RequestClock, Session
from app.core.pagination import CursorParam, Limit
from app.core.problems import DateOutOfRange, NotFound, problem_responses
from app.payments import service
from app.payments.schemas import PaymentRunCreate, PaymentRunList, PaymentRunOut

router = APIRouter(prefix="/v1/payment-runs", tags=["payments"])

Post = Annotated[Principal, Depends(require(Role.post))]
Reader = Annotated[
    Principal,
    Depends(require(Role.post, Role.admin, Role.provider, scopes=(Scope.claims,))),
]


@router.post(
    "",
    operation_id="createPaymentRun",
    status_code=201,
    response_model=PaymentRunOut,
    responses=problem_responses(DateOutOfRange),
)
async def create_payment_run(
    body: PaymentRunCreate,
    principal: Post,
    session: Session,
    clock: RequestClock,
    response: Response,
) -> PaymentRunOut:
    """Pay every validated, unpaid claim, and each contract's monthly service fee less that
    month's service credits (as they stand now). Nothing is paid twice: a later run for the
    month carries only what is new."""
    run = await service.create_payment_run(session, clock, principal, body.month)
    response.headers["Location"] = f"/v1/payment-runs/{run.id}"
    return run


@router.get("", operation_id="listPaymentRuns", response_model=PaymentRunList)
async def list_payment_runs(
    _principal: Annotated[Principal, Depends(require(Role.post, Role.admin))],
    session: Session,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> PaymentRunList:
    """Payment runs, oldest first, a page at a time (without their lines)."""
    items, next_cursor = await service.list_payment_runs(session, cursor=cursor, limit=limit)
    return PaymentRunList(items=items, next_cursor=next_cursor)


@router.get(
    "/{id}",
    operation_id="getPaymentRun",
    response_model=PaymentRunOut,
    responses={
        200: {
            "description": "The run; `Accept: text/csv` gives the remittance, a row per line.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(NotFound),
    },
)
async def get_payment_run(
    run_id: Annotated[str, Path(alias="id", max_length=40), WithoutNul],
    principal: Reader,
    session: Session,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> PaymentRunOut | Response:
    """A run with its lines; a provider sees only its own lines (its remittance)."""
    run = await service.get_payment_run(session, principal, run_id)
    if accept and "text/csv" in accept:
        return Response(service.remittance_csv(run), media_type="text/csv; charset=utf-8")
    return run
