"""Run the daily jobs on demand (api-contract.md, Jobs), and list past runs."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.core.auth import Principal, Role, require
from app.core.clock import Clock
from app.core.deps import AppSettings, Session
from app.core.pagination import CursorParam, Limit
from app.core.problems import DateOutOfRange, problem_responses
from app.jobs import service
from app.jobs.schemas import (
    AutoDnaRunOut,
    AutoEndRunOut,
    JobRunList,
    JobRunOut,
    JobRunRequest,
    RetentionRunOut,
)
from app.sandbox.service import read_clock

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

Admin = Annotated[Principal, Depends(require(Role.admin))]


async def job_clock(request: Request, settings: AppSettings) -> Clock:
    # Read in a session of its own: the job commits batch by batch in its own sessions, and on
    # SQLite the request's transaction would hold the write lock they queue on.
    async with request.app.state.sessions() as session:
        return await read_clock(session, sandbox=settings.sandbox)


JobClock = Annotated[Clock, Depends(job_clock)]


def _as_of(body: JobRunRequest | None, clock: Clock) -> date:
    as_of = (body.as_of if body else None) or clock.today
    if as_of > clock.today:
        raise DateOutOfRange("as_of may not be after today.")
    return as_of


async def _run(
    request: Request, job: service.Job, clock: Clock, body: JobRunRequest | None
) -> service.RunResult:
    return await service.run_job(
        request.app.state.sessions,
        job,
        clock=clock,
        as_of=_as_of(body, clock),
        trigger=service.Trigger.api,
    )


@router.post(
    "/auto-dna/runs",
    operation_id="runAutoDnaJob",
    response_model=AutoDnaRunOut,
    responses=problem_responses(DateOutOfRange),
)
async def run_auto_dna(
    request: Request, _admin: Admin, clock: JobClock, body: JobRunRequest | None = None
) -> AutoDnaRunOut:
    """Close as Did Not Attend every referral not started 30 days after referral (JFS 3.40)."""
    result = await _run(request, service.Job.auto_dna, clock, body)
    return AutoDnaRunOut(closed=result.changed, **_facts(result))


@router.post(
    "/auto-end/runs",
    operation_id="runAutoEndJob",
    response_model=AutoEndRunOut,
    responses=problem_responses(DateOutOfRange),
)
async def run_auto_end(
    request: Request, _admin: Admin, clock: JobClock, body: JobRunRequest | None = None
) -> AutoEndRunOut:
    """End with code 45 every started referral whose allotted time has run (JFS 5.08)."""
    result = await _run(request, service.Job.auto_end, clock, body)
    return AutoEndRunOut(ended=result.changed, **_facts(result))


@router.post(
    "/retention/runs",
    operation_id="runRetentionJob",
    response_model=RetentionRunOut,
    responses=problem_responses(DateOutOfRange),
)
async def run_retention(
    request: Request, _admin: Admin, clock: JobClock, body: JobRunRequest | None = None
) -> RetentionRunOut:
    """Erase every closed referral of a contract whose Records Retention End Date is before
    `as_of` (JFS 1.33, GEN 76-77), as erasure on request does."""
    result = await _run(request, service.Job.retention, clock, body)
    return RetentionRunOut(erased=result.changed, **_facts(result))


def _facts(result: service.RunResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "as_of": result.as_of,
        "batches": result.batches,
        "duration_ms": result.duration_ms,
    }


@router.get("/runs", operation_id="listJobRuns", response_model=JobRunList)
async def list_job_runs(
    _admin: Admin, session: Session, cursor: CursorParam = None, limit: Limit = 50
) -> JobRunList:
    """Past runs of the daily jobs, newest first: when, as of which day, how many, how long."""
    page, next_cursor = await service.list_runs(session, limit=limit, cursor=cursor)
    return JobRunList(items=[JobRunOut.model_validate(r) for r in page], next_cursor=next_cursor)
