"""Read audit queries (domain.md §10, GEN 71): one ``referral_reads`` row per referral a
response showed, all the rows of one response sharing its ``read_id``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import ReferralRead
from app.core import driver
from app.core.auth import Principal
from app.core.database import UTCDateTime, on_postgres
from app.core.pagination import decode_cursor, encode_cursor, fetch_page

# One statement whatever the number of referrals, and the same statement every time (so it
# is compiled and prepared once): the ids travel as one array parameter.
_INSERT_READ = """
INSERT INTO referral_reads
    (read_id, referral_id, at, actor_sub, actor_role, actor_provider_id, operation)
SELECT :read_id, {id}, {at}, :sub, :role, :provider_id, :operation
FROM {source}
"""
_TYPES = (bindparam("at", type_=UTCDateTime()),)
_INSERT_READ_PG = text(
    _INSERT_READ.format(
        id="t.referral_id",
        at="CAST(:at AS timestamptz)",
        source="unnest(CAST(:ids AS varchar[])) WITH ORDINALITY AS t(referral_id, n) ORDER BY n",
    )
).bindparams(*_TYPES)
_INSERT_READ_DRIVER = driver.DriverStatement(_INSERT_READ_PG)
_INSERT_READ_SQLITE = text(
    _INSERT_READ.format(id="value", at=":at", source="json_each(:ids) ORDER BY key")
).bindparams(*_TYPES)


async def add_read(
    session: AsyncSession,
    read_id: str,
    referral_ids: list[str],
    principal: Principal,
    at: datetime,
    operation: str,
) -> None:
    """One row per referral, in the order shown, in one statement (on PostgreSQL on the
    session's driver connection: the read audit is on the hot path)."""
    postgres = on_postgres(session)
    params = {
        "read_id": read_id,
        "ids": referral_ids if postgres else json.dumps(referral_ids),
        "at": at,
        "sub": principal.sub,
        "role": str(principal.role),
        "provider_id": principal.provider_id,
        "operation": operation,
    }
    if postgres:
        await driver.execute(session, _INSERT_READ_DRIVER, params)
    else:
        await session.execute(_INSERT_READ_SQLITE, params)


def _read_ids(referral_ids: Sequence[str]) -> Select[str]:
    return (
        select(ReferralRead.read_id)
        .where(ReferralRead.referral_id.in_(referral_ids))
        .distinct()
        .order_by(ReferralRead.read_id)
    )


async def page_of_read_ids(
    session: AsyncSession, referral_id: str, *, cursor: str | None, limit: int
) -> tuple[list[str], str | None]:
    """The reads that showed this referral, oldest first, a page at a time."""
    statement = _read_ids([referral_id])
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(ReferralRead.read_id > after)
    return await fetch_page(session, statement, limit, encode_cursor)


async def read_ids_of(session: AsyncSession, referral_ids: Sequence[str]) -> list[str]:
    """Every read that showed any of these referrals, oldest first."""
    return list((await session.scalars(_read_ids(referral_ids))).all())


async def rows_of_reads(session: AsyncSession, read_ids: Sequence[str]) -> list[ReferralRead]:
    """These reads' rows, read by read, each in the order its referrals were shown."""
    statement = (
        select(ReferralRead)
        .where(ReferralRead.read_id.in_(read_ids))
        .order_by(ReferralRead.read_id, ReferralRead.id)
    )
    return list((await session.scalars(statement)).all())
