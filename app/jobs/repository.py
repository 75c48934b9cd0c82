"""Job run queries: the run log (one row per run, domain.md §6), and the advisory lock by
which the schedulers of several replicas leave the day's run to one of them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.jobs.models import JobRun


async def add_run(session: AsyncSession, run: JobRun) -> None:
    session.add(run)
    await session.flush()


async def page_of_runs(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> tuple[list[JobRun], str | None]:
    """Runs newest first."""
    statement = select(JobRun).order_by(JobRun.id.desc())
    if cursor is not None:
        (before,) = decode_cursor(cursor, int)
        statement = statement.where(JobRun.id < before)
    return await fetch_page(session, statement, limit, lambda r: encode_cursor(r.id))


async def has_run(session: AsyncSession, job: str, as_of: date, trigger: str) -> bool:
    """Whether ``trigger`` has run ``job`` as of that day."""
    statement = select(JobRun.id).where(
        JobRun.job == job, JobRun.as_of == as_of, JobRun.trigger == trigger
    )
    return await session.scalar(statement) is not None


async def try_advisory_lock(connection: AsyncConnection, key: int) -> bool:
    """PostgreSQL: take the session-level advisory lock ``key`` on this connection unless
    another connection holds it. It is held until ``advisory_unlock``, or the connection
    ends."""
    return bool(await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}))


async def advisory_unlock(connection: AsyncConnection, key: int) -> None:
    await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
