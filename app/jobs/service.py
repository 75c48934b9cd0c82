"""The automatic jobs (domain.md §6): set-based, in keyset batches, exactly once.

* Auto DNA (JFS 3.40): a referral still referred, acknowledged or accepted on its
  ``auto_dna_on`` day (referral date + 30 calendar days) becomes cancelled / did not attend,
  closed by the system.
* Auto end (JFS 5.08): a started referral on its ``auto_end_on`` day (start date + the
  programme's allotted days) becomes ended with code 45 and that day as its end date.

Each applies a system row of the transition table, a batch at a time, through
``referrals.service.close_due_batch``: one statement on PostgreSQL, three on SQLite, rows never
loaded into Python one by one; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` with the status
re-checked, so that concurrent runs in several replicas close each referral once, with one
event. Each batch commits on its own, and each run is one row of the run log.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.jobs import repository
from app.jobs.models import JobRun
from app.privacy.service import retention_batch
from app.referrals import service as referrals
from app.referrals.states import ReferralAction
from app.referrals.transitions import SYSTEM_TRANSITIONS

DEFAULT_BATCH_SIZE = 5_000
_EPOCH = date(1, 1, 1)


class Job(enum.StrEnum):
    auto_dna = "auto-dna"
    auto_end = "auto-end"
    # JFS 1.33: erase closed referrals past their contract's Records Retention End Date.
    retention = "retention"


class Trigger(enum.StrEnum):
    api = "api"
    cli = "cli"
    scheduler = "scheduler"


# The jobs that close referrals, each by its system row of the transition table
# (app/referrals/transitions.py), named after its action.
SYSTEM_CLOSES: dict[Job, ReferralAction] = {
    Job(transition.action.value): transition.action for transition in SYSTEM_TRANSITIONS
}


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    job: Job
    as_of: date
    changed: int
    batches: int
    duration_ms: int
    started_at: datetime


async def _batch(
    session: AsyncSession,
    job: Job,
    clock: Clock,
    as_of: date,
    after: tuple[date, str],
    batch_size: int,
) -> tuple[int, tuple[date, str] | None]:
    if job is Job.retention:
        # Keyed on the referral id alone; the day part of the key stays at its start.
        count, last_id = await retention_batch(session, clock, as_of, after[1], batch_size)
        return count, None if last_id is None else (_EPOCH, last_id)
    return await referrals.close_due_batch(
        session, SYSTEM_CLOSES[job], clock, as_of, after, batch_size
    )


async def run_job(
    sessions: async_sessionmaker[AsyncSession],
    job: Job,
    *,
    clock: Clock,
    as_of: date,
    trigger: Trigger,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RunResult:
    """Run one job to completion, a committed batch at a time, and record the run."""
    started = time.perf_counter()
    changed = 0
    batches = 0
    after: tuple[date, str] = (_EPOCH, "")
    while True:
        async with sessions() as session, session.begin():
            count, last = await _batch(session, job, clock, as_of, after, batch_size)
        if last is None:
            break
        changed += count
        batches += 1
        after = last
    duration_ms = int((time.perf_counter() - started) * 1000)
    async with sessions() as session, session.begin():
        run = JobRun(
            job=str(job),
            trigger=str(trigger),
            as_of=as_of,
            started_at=clock.now,
            finished_at=clock.now,
            duration_ms=duration_ms,
            changed=changed,
            batches=batches,
        )
        await repository.add_run(session, run)
        run_id = run.id
    return RunResult(run_id, job, as_of, changed, batches, duration_ms, clock.now)


async def list_runs(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[JobRun], str | None]:
    """Runs newest first."""
    return await repository.page_of_runs(session, limit=limit, cursor=cursor)
