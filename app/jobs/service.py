"""The automatic jobs (domain.md §6): set-based, in keyset batches, exactly once.

* Auto DNA (JFS 3.40): a referral still referred, acknowledged or accepted on its
  ``auto_dna_on`` day (referral date + 30 calendar days) becomes cancelled / did not attend,
  closed by the system.
* Auto end (JFS 5.08): a started referral on its ``auto_end_on`` day (start date + the
  programme's allotted days) becomes ended with code 45 and that day as its end date.

Each batch is one statement (PostgreSQL) or three (SQLite) and one commit: rows are never
loaded into Python one by one, and memory does not grow with the number of referrals. On
PostgreSQL the batch takes its rows ``FOR UPDATE SKIP LOCKED``, and every statement re-checks
the status, so concurrent runs in several replicas close each referral once, with one event.
On SQLite writers are serialised by the database lock.
"""

from __future__ import annotations

import enum
import json
import time
import typing
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import (
    Date,
    String,
    Table,
    func,
    insert,
    literal,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from app.core.clock import Clock
from app.jobs import repository
from app.jobs.models import JobRun
from app.privacy.service import retention_batch
from app.referrals.models import EVENT_COLUMNS, Referral, ReferralEvent
from app.referrals.repository import transaction_id
from app.referrals.rules import Change, DeadlineFacts
from app.referrals.states import ActorRole, EventType, ReferralStatus
from app.referrals.transitions import SYSTEM_TRANSITIONS, Transition
from app.webhooks import service as webhooks

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


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a job closes, keyed on which deadline column, into which state: a system row of
    the transition table (app/referrals/transitions.py), read as the job needs it."""

    job: Job
    deadline: str  # the Referral column holding the due day
    sources: tuple[ReferralStatus, ...]
    target: ReferralStatus
    event: EventType
    transition: Transition

    def change(self, clock: Clock, as_of: date) -> Change:
        """The row's effect, set-based: the column values every closed referral takes (a
        value read from the referral is its column) and the event's data, as of the run's
        day. The same effect closes one referral on a read (``settle_deadlines``)."""
        change = self.transition.effect(typing.cast(DeadlineFacts, Referral), None, None, clock)
        return Change(change.fields, change.event_data | {"as_of": as_of.isoformat()})


def _spec(transition: Transition) -> JobSpec:
    assert transition.deadline is not None
    return JobSpec(
        Job(transition.action.value),
        transition.deadline,
        tuple(s for s in ReferralStatus if s in transition.sources),
        transition.target,
        transition.event,
        transition,
    )


SPECS = {spec.job: spec for spec in map(_spec, SYSTEM_TRANSITIONS)}


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    job: Job
    as_of: date
    changed: int
    batches: int
    duration_ms: int
    started_at: datetime


def _sql_value(value: object) -> object:
    """A bind value as the driver wants it (enums as their plain values)."""
    if isinstance(value, enum.StrEnum):
        return str(value)
    if isinstance(value, enum.IntEnum):
        return int(value)
    return value


# PostgreSQL: one statement per batch. Lock what is due and unlocked, close it, write its
# events, and report the batch's last key for the next one.
_PG_BATCH = """
WITH batch AS (
    SELECT id FROM referrals
    WHERE status IN ({sources}) AND {deadline} <= CAST(:as_of AS date)
      AND ({deadline}, id) > (CAST(:after_day AS date), CAST(:after_id AS varchar))
    ORDER BY {deadline}, id
    LIMIT CAST(:batch_size AS integer)
    FOR UPDATE SKIP LOCKED
), closed AS (
    UPDATE referrals AS r
    SET {assignments}, updated_at = CAST(:now AS timestamptz), version = r.version + 1
    FROM batch
    WHERE r.id = batch.id AND r.status IN ({sources})
    RETURNING r.id, r.provider_id, r.version, r.{deadline} AS due
), written AS (
    INSERT INTO referral_events (txid, referral_id, provider_id, type, occurred_at, actor_sub,
                                 actor_role, actor_provider_id, referral_version, status, data)
    SELECT pg_current_xact_id()::text::bigint, id, provider_id, CAST(:event AS varchar),
           CAST(:now AS timestamptz), 'system', 'system', NULL, version,
           CAST(:target AS varchar), CAST(:data AS json)
    FROM closed ORDER BY due, id
    RETURNING 1
)
SELECT (SELECT count(*) FROM written) AS changed, due, id
FROM closed ORDER BY due DESC, id DESC LIMIT 1
"""


async def _postgres_batch(
    session: AsyncSession,
    spec: JobSpec,
    clock: Clock,
    as_of: date,
    after: tuple[date, str],
    batch_size: int,
) -> tuple[int, tuple[date, str] | None]:
    sources = ", ".join(f"'{s}'" for s in spec.sources)
    change = spec.change(clock, as_of)
    # Each column takes the effect's value, bound (its type inferred from the column), or
    # another column of the same row (auto end: the end date is the ``auto_end_on`` day).
    assignments, values = [], {}
    for name, value in change.fields.items():
        if isinstance(value, InstrumentedAttribute):
            assignments.append(f"{name} = r.{value.key}")
        else:
            assignments.append(f"{name} = :set_{name}")
            values[f"set_{name}"] = _sql_value(value)
    sql = _PG_BATCH.format(
        sources=sources, deadline=spec.deadline, assignments=", ".join(assignments)
    )
    row = (
        await session.execute(
            text(sql),
            {
                "as_of": as_of,
                "after_day": after[0],
                "after_id": after[1],
                "batch_size": batch_size,
                "target": str(spec.target),
                "now": clock.now,
                "event": str(spec.event),
                "data": json.dumps(change.event_data),
                **values,
            },
        )
    ).first()
    if row is None:
        return 0, None
    # The outbox: this transaction's events of this job, announced set-based.
    await webhooks.enqueue_for_events(
        session,
        select(ReferralEvent.id).where(
            ReferralEvent.txid == transaction_id("postgresql"),
            ReferralEvent.type == str(spec.event),
        ),
    )
    return int(row.changed), (row.due, row.id)


async def _sqlite_batch(
    session: AsyncSession,
    spec: JobSpec,
    clock: Clock,
    as_of: date,
    after: tuple[date, str],
    batch_size: int,
) -> tuple[int, tuple[date, str] | None]:
    deadline = getattr(Referral, spec.deadline)
    due = (
        select(Referral.id, deadline)
        .where(
            Referral.status.in_([str(s) for s in spec.sources]),
            deadline <= as_of,
            tuple_(deadline, Referral.id) > tuple_(literal(after[0], Date), literal(after[1])),
        )
        .order_by(deadline, Referral.id)
        .limit(batch_size)
    )
    keys = (await session.execute(due)).all()
    if not keys:
        return 0, None
    ids = [k.id for k in keys]
    change = spec.change(clock, as_of)
    values = {name: _sql_value(value) for name, value in change.fields.items()}
    values |= {"updated_at": clock.now, "version": Referral.version + 1}
    # The events first, from the rows as they stand, then the change itself.
    await session.execute(
        insert(typing.cast(Table, ReferralEvent.__table__)).from_select(
            EVENT_COLUMNS,
            select(
                literal(0),
                Referral.id,
                Referral.provider_id,
                literal(str(spec.event), String),
                literal(clock.now, ReferralEvent.occurred_at.type),
                literal(str(ActorRole.system), String),
                literal(str(ActorRole.system), String),
                literal(None, String),
                Referral.version + 1,
                literal(str(spec.target), String),
                func.json(literal(json.dumps(change.event_data), String)),
            )
            .where(Referral.id.in_(ids))
            .order_by(deadline, Referral.id),
        )
    )
    await session.execute(
        update(Referral)
        .where(Referral.id.in_(ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    # The outbox: the events just written (a referral is closed by a job once), set-based.
    await webhooks.enqueue_for_events(
        session,
        select(ReferralEvent.id).where(
            ReferralEvent.referral_id.in_(ids), ReferralEvent.type == str(spec.event)
        ),
    )
    return len(ids), (keys[-1][1], keys[-1].id)


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
    spec = SPECS[job]
    postgres = session.get_bind().dialect.name == "postgresql"
    batch = _postgres_batch if postgres else _sqlite_batch
    return await batch(session, spec, clock, as_of, after, batch_size)


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
