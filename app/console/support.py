"""DWP's support team (PRaP Operational Support Team): claims awaiting validation, payment
runs with their lines, held fees and recoveries, and the remittance CSV (domain.md §8)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.claims import service as claims
from app.claims.schemas import ClaimOut, ClaimReject
from app.claims.states import ClaimStatus
from app.console.auth import ConsoleUser, check_csrf, settings_of
from app.console.forms import FormError, form_fields
from app.console.routing import PostUser, RunReader, console_router
from app.console.templating import render
from app.core.deps import RequestClock, Session
from app.core.problems import ProblemError
from app.payments import service as payments
from app.payments.schemas import PaymentRunCreate, PaymentRunSummary

router = console_router()

Id = Annotated[str, Path(max_length=40)]
MAX_PAGES = 10

# Line kinds in the order a remittance reads; any other kind (a new one) follows, by name.
LINE_SECTIONS = {"claim": "Claims paid", "service_fee": "Service fees", "recovery": "Recoveries"}


async def _every(fetch: Callable[[str | None], Any], max_pages: int = MAX_PAGES) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    for _ in range(max_pages):
        page, cursor = await fetch(cursor)
        items += page
        if cursor is None:
            break
    return items


async def _submitted_claims(session: AsyncSession, user: ConsoleUser) -> list[ClaimOut]:
    async def fetch(cursor: str | None) -> tuple[list[ClaimOut], str | None]:
        return await claims.list_claims(
            session,
            user.principal,
            status=ClaimStatus.submitted,
            claim_type=None,
            referral_id=None,
            provider_id=None,
            cursor=cursor,
            limit=100,
        )

    return await _every(fetch)


async def _claims_page(
    request: Request,
    session: AsyncSession,
    user: ConsoleUser,
    *,
    done: str | None = None,
    errors: Iterable[FormError] = (),
    status_code: int = 200,
) -> HTMLResponse:
    items = await _submitted_claims(session, user)
    return render(
        request,
        "claims.html",
        {"claims": items, "done": done, "errors": list(errors)},
        user=user,
        status_code=status_code,
    )


@router.get("/claims")
async def claims_page(
    request: Request,
    user: PostUser,
    session: Session,
    done: Annotated[str | None, Query(pattern="^(validated|rejected)$")] = None,
) -> HTMLResponse:
    return await _claims_page(request, session, user, done=done)


@router.post("/claims/{claim_id}/{decision}")
async def decide_claim(
    request: Request,
    claim_id: Id,
    decision: Annotated[str, Path(pattern="^(validate|reject)$")],
    user: PostUser,
    session: Session,
    clock: RequestClock,
) -> Response:
    form = await form_fields(request)
    check_csrf(settings_of(request), user.token, form.get("csrf_token"))
    try:
        if decision == "validate":
            await claims.validate_claim(session, clock, user.principal, claim_id)
        else:
            body = ClaimReject.model_validate({"reason": form.get("reason", "").strip()})
            await claims.reject_claim(session, clock, user.principal, claim_id, body.reason)
    except ValidationError:
        error = FormError("reason", f"#reason-{claim_id}", "Enter why the claim is rejected")
        return await _claims_page(request, session, user, errors=[error], status_code=422)
    except ProblemError as problem:
        if problem.status == 404:
            raise
        await session.rollback()
        error = FormError(None, None, problem.detail)
        return await _claims_page(
            request, session, user, errors=[error], status_code=problem.status
        )
    done = "validated" if decision == "validate" else "rejected"
    return RedirectResponse(f"/console/claims?done={done}", status_code=303)


# --- payment runs -----------------------------------------------------------------------


async def _runs_page(
    request: Request,
    session: AsyncSession,
    user: ConsoleUser,
    *,
    errors: Iterable[FormError] = (),
    month: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    async def fetch(cursor: str | None) -> tuple[list[PaymentRunSummary], str | None]:
        return await payments.list_payment_runs(session, cursor=cursor, limit=100)

    runs = sorted(await _every(fetch), key=lambda r: r.created_at, reverse=True)
    return render(
        request,
        "payment_runs.html",
        {"runs": runs, "errors": list(errors), "month": month},
        user=user,
        status_code=status_code,
    )


@router.get("/payment-runs")
async def payment_runs_page(request: Request, user: RunReader, session: Session) -> Response:
    if user.principal.is_provider:
        # Providers see a run through its remittance link only (their own lines).
        return RedirectResponse("/console", status_code=303)
    return await _runs_page(request, session, user)


@router.post("/payment-runs")
async def create_payment_run(
    request: Request, user: PostUser, session: Session, clock: RequestClock
) -> Response:
    form = await form_fields(request)
    check_csrf(settings_of(request), user.token, form.get("csrf_token"))
    month = form.get("month", "").strip()
    try:
        body = PaymentRunCreate.model_validate({"month": month})
        run = await payments.create_payment_run(session, clock, user.principal, body.month)
    except ValidationError:
        error = FormError("month", "#month", "Enter the month as YYYY-MM, for example 2026-03")
        return await _runs_page(
            request, session, user, errors=[error], month=month, status_code=422
        )
    except ProblemError as problem:
        await session.rollback()
        error = FormError("month", "#month", problem.detail)
        return await _runs_page(
            request, session, user, errors=[error], month=month, status_code=problem.status
        )
    return RedirectResponse(f"/console/payment-runs/{quote(run.id, safe='')}", status_code=303)


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """Every field the rows carry, but the kind (the section says it) and empty ones."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k != "kind"]
    return [c for c in columns if any(row.get(c) is not None for row in rows)]


def _table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"columns": _columns(rows), "rows": rows}


def run_sections(run: BaseModel) -> dict[str, Any]:
    """The run's lines by kind and its held fees, whatever fields they carry, so that new
    kinds of line (held fees, recoveries) show without a change here."""
    document = run.model_dump(mode="json")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for line in document.get("lines", []):
        by_kind.setdefault(str(line.get("kind")), []).append(line)
    order = [k for k in LINE_SECTIONS if k in by_kind] + sorted(set(by_kind) - set(LINE_SECTIONS))
    sections = [
        {"kind": kind, "title": LINE_SECTIONS.get(kind, kind.replace("_", " ").capitalize()),
         **_table(by_kind[kind])}
        for kind in order
    ]  # fmt: skip
    held = document.get("held_fees") or []
    return {
        "document": document,
        "sections": sections,
        "held": _table(held) if held else None,
    }


@router.get("/payment-runs/{run_id}")
async def payment_run_page(
    request: Request, run_id: Id, user: RunReader, session: Session
) -> HTMLResponse:
    run = await payments.get_payment_run(session, user.principal, run_id)
    return render(request, "payment_run.html", {"run": run, **run_sections(run)}, user=user)


@router.get("/payment-runs/{run_id}/remittance.csv")
async def remittance(run_id: Id, user: RunReader, session: Session) -> Response:
    run = await payments.get_payment_run(session, user.principal, run_id)
    return Response(
        payments.remittance_csv(run),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="remittance-{run.month}-{run.id}.csv"',
            "Cache-Control": "no-store",
        },
    )
