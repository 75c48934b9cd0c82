"""Recording and listing reads of personal data (domain.md §10, GEN 71).

Every service that answers with a participant's personal data calls ``record_read`` once per
response, in the request's own transaction: the read and the answer commit together, and a
response that rolled back leaves no record of a read that never reached anyone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from sqlalchemy import Select, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import ReferralRead
from app.audit.schemas import ReadOut
from app.core import driver
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.database import UTCDateTime
from app.core.ids import new_id
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.referrals.schemas import Actor
from app.referrals.states import ActorRole

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

# The ids a request showed, for other per-request records (the idempotency store links its
# stored answer to them, so that erasure can find and delete it).
SHOWN_REFERRALS = "prap.shown_referral_ids"


async def record_read(
    session: AsyncSession,
    principal: Principal,
    clock: Clock,
    operation: str,
    referral_ids: Iterable[str],
) -> None:
    """Record that this response showed these referrals' personal data: one statement, however
    many referrals. Nothing is recorded when it showed none."""
    ids = list(dict.fromkeys(referral_ids))
    if not ids:
        return
    session.info.setdefault(SHOWN_REFERRALS, set()).update(ids)
    postgres = session.get_bind().dialect.name == "postgresql"
    params = {
        "read_id": new_id(),
        "ids": ids if postgres else json.dumps(ids),
        "at": clock.now,
        "sub": principal.sub,
        "role": str(principal.role),
        "provider_id": principal.provider_id,
        "operation": operation,
    }
    if postgres:
        await driver.execute(session, _INSERT_READ_DRIVER, params)  # on the hot path
    else:
        await session.execute(_INSERT_READ_SQLITE, params)


def shown_referrals(session: AsyncSession) -> set[str]:
    shown: set[str] = session.info.get(SHOWN_REFERRALS, set())
    return shown


def _read_ids(referral_ids: Sequence[str]) -> Select[str]:
    return (
        select(ReferralRead.read_id)
        .where(ReferralRead.referral_id.in_(referral_ids))
        .distinct()
        .order_by(ReferralRead.read_id)
    )


async def reads_page(
    session: AsyncSession, referral_id: str, *, cursor: str | None, limit: int
) -> tuple[list[ReadOut], str | None]:
    """Reads that showed this referral, oldest first, each naming every referral it showed."""
    statement = _read_ids([referral_id])
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(ReferralRead.read_id > after)
    read_ids, next_cursor = await fetch_page(session, statement, limit, encode_cursor)
    return await _assemble(session, read_ids, only=None), next_cursor


async def reads_of_all(session: AsyncSession, referral_ids: Sequence[str]) -> list[ReadOut]:
    """Every read that showed any of these referrals, each naming only those of them (a
    subject access request must not disclose other people's referrals)."""
    if not referral_ids:
        return []
    read_ids = list((await session.scalars(_read_ids(referral_ids))).all())
    return await _assemble(session, read_ids, only=set(referral_ids))


async def _assemble(
    session: AsyncSession, read_ids: Sequence[str], *, only: set[str] | None
) -> list[ReadOut]:
    rows = (
        await session.scalars(
            select(ReferralRead)
            .where(ReferralRead.read_id.in_(read_ids))
            .order_by(ReferralRead.read_id, ReferralRead.id)
        )
    ).all()
    reads: dict[str, ReadOut] = {}
    for row in rows:
        read = reads.get(row.read_id)
        if read is None:
            read = reads[row.read_id] = ReadOut(
                at=row.at,
                actor=Actor(
                    sub=row.actor_sub,
                    role=ActorRole(row.actor_role),
                    provider_id=row.actor_provider_id,
                ),
                operation=row.operation,
                referral_ids=[],
            )
        if only is None or row.referral_id in only:
            read.referral_ids.append(row.referral_id)
    return list(reads.values())
