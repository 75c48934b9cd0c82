"""Idempotency record queries (api-contract.md, Writes). A key is unique per caller (the
unique constraint decides between two replicas reserving it at once), and a record names the
referrals its stored answer shows, so that erasure can find it (domain.md §10)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import on_postgres
from app.idempotency.models import IdempotencyRecord, IdempotencyReferral


async def find(session: AsyncSession, caller: str, key: str) -> IdempotencyRecord | None:
    """The caller's record of this key, locked on PostgreSQL so that requests with the same
    key decide one after the other (SQLite already serialises writers)."""
    statement = select(IdempotencyRecord).where(
        IdempotencyRecord.caller == caller, IdempotencyRecord.key == key
    )
    if on_postgres(session):
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalar_one_or_none()


async def get(session: AsyncSession, record_id: int) -> IdempotencyRecord | None:
    return await session.get(IdempotencyRecord, record_id)


async def add(session: AsyncSession, record: IdempotencyRecord) -> None:
    """Raises ``IntegrityError`` when the caller's key is taken (the unique constraint)."""
    session.add(record)
    await session.flush()


async def remove(session: AsyncSession, record: IdempotencyRecord) -> None:
    await session.delete(record)
    await session.flush()


async def remove_by_id(session: AsyncSession, record_id: int) -> None:
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))


async def remove_expired(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def shown_referral_ids(session: AsyncSession, record_id: int) -> tuple[str, ...]:
    statement = (
        select(IdempotencyReferral.referral_id)
        .where(IdempotencyReferral.record_id == record_id)
        .order_by(IdempotencyReferral.referral_id)
    )
    return tuple((await session.scalars(statement)).all())


async def link_referrals(
    session: AsyncSession, record_id: int, referral_ids: Sequence[str]
) -> None:
    await session.execute(
        insert(IdempotencyReferral).values(
            [{"record_id": record_id, "referral_id": r} for r in referral_ids]
        )
    )


async def remove_answers_showing(session: AsyncSession, referral_ids: Sequence[str]) -> None:
    """The records linked to any of these referrals, then the links: two statements."""
    shown = select(IdempotencyReferral.record_id).where(
        IdempotencyReferral.referral_id.in_(referral_ids)
    )
    await session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.id.in_(shown))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(IdempotencyReferral)
        .where(IdempotencyReferral.referral_id.in_(referral_ids))
        .execution_options(synchronize_session=False)
    )
