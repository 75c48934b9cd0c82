"""The daily jobs, run by the server itself when ``PRAP_SCHEDULER=1``.

Every replica may run the scheduler: on PostgreSQL a run takes an advisory lock and skips a
job already run by the scheduler for that day, so one replica does the work; the jobs
themselves are safe to run concurrently anyway (``app.jobs.service``). A run happens at
start-up (catching up after downtime) and then every day shortly after midnight, UK time.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import UK, real_now
from app.core.database import database_unavailable
from app.core.settings import Settings
from app.idempotency.service import purge_expired
from app.jobs import repository
from app.jobs.service import Job, RunResult, Trigger, run_job
from app.sandbox.service import read_clock

logger = structlog.get_logger("prap.scheduler")

SCHEDULER_LOCK = 72_101_002
RUN_AT = time(0, 10)


def seconds_until_next_run(now: datetime) -> float:
    local = now.astimezone(UK)
    target = datetime.combine(local.date(), RUN_AT, tzinfo=UK)
    if target <= local:
        target = datetime.combine(local.date() + timedelta(days=1), RUN_AT, tzinfo=UK)
    return max((target - local).total_seconds(), 1.0)


async def run_daily_jobs(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> list[RunResult]:
    """Run every job as of today, unless the scheduler already did today."""
    async with sessions() as session:
        clock = await read_clock(session, sandbox=settings.sandbox)
    engine: AsyncEngine = sessions.kw["bind"]
    # A connection of its own, held for the whole run: a session-level advisory lock belongs
    # to the connection that took it.
    async with engine.connect() as lock_connection:
        postgres = lock_connection.dialect.name == "postgresql"
        if postgres:
            lock_connection = await lock_connection.execution_options(isolation_level="AUTOCOMMIT")
            if not await repository.try_advisory_lock(lock_connection, SCHEDULER_LOCK):
                return []
        try:
            results = []
            for job in Job:
                async with sessions() as session:
                    done = await repository.has_run(
                        session, str(job), clock.today, str(Trigger.scheduler)
                    )
                if done:
                    continue
                results.append(
                    await run_job(
                        sessions, job, clock=clock, as_of=clock.today, trigger=Trigger.scheduler
                    )
                )
            # Stored answers (which may hold personal data) are kept no longer than 24 hours.
            async with sessions() as session, session.begin():
                await purge_expired(session)
            return results
        finally:
            if postgres:
                await repository.advisory_unlock(lock_connection, SCHEDULER_LOCK)


async def scheduler_loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    while True:
        try:
            for result in await run_daily_jobs(sessions, settings):
                logger.info(
                    "job run",
                    job=str(result.job),
                    as_of=result.as_of.isoformat(),
                    changed=result.changed,
                    duration_ms=result.duration_ms,
                )
        except Exception as error:
            # A failed run is retried at the next tick; the server carries on serving. A
            # database that is down is expected now and then: one line, no traceback.
            if database_unavailable(error):
                logger.warning("daily jobs deferred: database unavailable")
            else:
                logger.exception("daily jobs failed")
        await asyncio.sleep(seconds_until_next_run(real_now()))
