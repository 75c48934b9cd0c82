"""Recording and listing reads of personal data (domain.md §10, GEN 71).

Every service that answers with a participant's personal data calls ``record_read`` once per
response, in the request's own transaction: the read and the answer commit together, and a
response that rolled back leaves no record of a read that never reached anyone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import repository
from app.audit.schemas import ReadOut
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.referrals.schemas import Actor
from app.referrals.states import ActorRole

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
    await repository.add_read(session, new_id(), ids, principal, clock.now, operation)


def shown_referrals(session: AsyncSession) -> set[str]:
    shown: set[str] = session.info.get(SHOWN_REFERRALS, set())
    return shown


async def reads_page(
    session: AsyncSession, referral_id: str, *, cursor: str | None, limit: int
) -> tuple[list[ReadOut], str | None]:
    """Reads that showed this referral, oldest first, each naming every referral it showed."""
    read_ids, next_cursor = await repository.page_of_read_ids(
        session, referral_id, cursor=cursor, limit=limit
    )
    return await _assemble(session, read_ids, only=None), next_cursor


async def reads_of_all(session: AsyncSession, referral_ids: Sequence[str]) -> list[ReadOut]:
    """Every read that showed any of these referrals, each naming only those of them (a
    subject access request must not disclose other people's referrals)."""
    if not referral_ids:
        return []
    read_ids = await repository.read_ids_of(session, referral_ids)
    return await _assemble(session, read_ids, only=set(referral_ids))


async def _assemble(
    session: AsyncSession, read_ids: Sequence[str], *, only: set[str] | None
) -> list[ReadOut]:
    reads: dict[str, ReadOut] = {}
    for row in await repository.rows_of_reads(session, read_ids):
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
