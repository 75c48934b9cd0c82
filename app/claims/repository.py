"""Claim queries. Every read on a caller's behalf starts from ``readable_claims``: a provider
sees its own claims only, and another's answers 404 exactly like one that does not exist
(domain.md §1). Status lists come from the claim state table (``app.claims.transitions``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, bindparam, exists, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.claims.models import Claim, ClaimEvent
from app.claims.states import ClaimType
from app.claims.transitions import LIVE_CLAIM_STATUSES, VALIDATED_STATUSES, ClaimTransition
from app.core import driver
from app.core.auth import Principal
from app.core.queries import one_or_not_found, page_by_id, visible_to, where_equal

Actor = tuple[str, str, str | None]  # sub, role, provider_id


def _in(statuses: Sequence[str]) -> list[str]:
    return [str(s) for s in statuses]


def readable_claims(principal: Principal) -> Select[Claim]:
    return visible_to(select(Claim), Claim.provider_id, principal)


async def get_readable(
    session: AsyncSession, principal: Principal, claim_id: str, *, for_update: bool = False
) -> Claim:
    statement = readable_claims(principal).where(Claim.id == claim_id)
    return await one_or_not_found(session, statement, "No such claim.", for_update=for_update)


async def page_of(
    session: AsyncSession,
    principal: Principal,
    *,
    filters: dict[str, str | None],
    cursor: str | None,
    limit: int,
) -> tuple[list[Claim], str | None]:
    """Readable claims matching every given column filter, oldest first, a page at a time."""
    statement = where_equal(readable_claims(principal), Claim, filters)
    return await page_by_id(session, statement, Claim.id, cursor=cursor, limit=limit)


async def events_of(session: AsyncSession, claim_id: str) -> list[ClaimEvent]:
    statement = select(ClaimEvent).where(ClaimEvent.claim_id == claim_id).order_by(ClaimEvent.id)
    return list((await session.scalars(statement)).all())


async def claims_of_referrals(session: AsyncSession, referral_ids: Sequence[str]) -> list[Claim]:
    statement = select(Claim).where(Claim.referral_id.in_(referral_ids)).order_by(Claim.id)
    return list((await session.scalars(statement)).all())


# On the hot path (the start and end actions, GEN 122): on the driver connection.
_CLAIMED_BY = driver.DriverStatement(
    select(
        exists()
        .where(
            Claim.referral_id == bindparam("referral_id"),
            Claim.submitted_by == bindparam("sub"),
            # As ``== provider_id`` was: a caller with no provider matches no claim.
            Claim.provider_id.is_not_distinct_from(bindparam("provider_id", type_=String(40))),
        )
        .label("claimed")
    )
)


async def claimed_by(
    session: AsyncSession, referral_id: str, sub: str, provider_id: str | None
) -> bool:
    params = {"referral_id": referral_id, "sub": sub, "provider_id": provider_id}
    row = await driver.fetch_row(session, _CLAIMED_BY, params)
    return bool(row is not None and row.claimed)


async def validated_outcome(session: AsyncSession, referral_id: str) -> Claim | None:
    statement = select(Claim).where(
        Claim.referral_id == referral_id,
        Claim.claim_type == ClaimType.job_outcome,
        Claim.status.in_(_in(VALIDATED_STATUSES)),
    )
    return (await session.scalars(statement)).first()


async def live_claim_exists(session: AsyncSession, referral_id: str, claim_type: str) -> bool:
    statement = select(
        exists().where(
            Claim.referral_id == referral_id,
            Claim.claim_type == claim_type,
            Claim.status.in_(_in(LIVE_CLAIM_STATUSES)),
        )
    )
    return bool(await session.scalar(statement))


async def lock_claims_of(
    session: AsyncSession, referral_id: str, claim_type: ClaimType, sources: Sequence[str]
) -> list[Claim]:
    statement = select(Claim).where(
        Claim.referral_id == referral_id,
        Claim.claim_type == claim_type,
        Claim.status.in_(_in(sources)),
    )
    return list((await session.scalars(statement.with_for_update())).all())


async def add_claim(session: AsyncSession, claim: Claim) -> None:
    """Raises ``IntegrityError`` when a live claim of the type exists (the unique index)."""
    session.add(claim)
    await session.flush()


async def add_event(
    session: AsyncSession,
    claim: Claim,
    event_type: str,
    occurred_at: datetime,
    actor: Actor,
    data: dict[str, Any],
) -> None:
    sub, role, provider_id = actor
    session.add(
        ClaimEvent(
            claim_id=claim.id,
            type=event_type,
            status=claim.status,
            occurred_at=occurred_at,
            actor_sub=sub,
            actor_role=role,
            actor_provider_id=provider_id,
            data=data,
        )
    )
    await session.flush()


# --- payment runs (set-based) ----------------------------------------------------------------


async def pay_for_run(
    session: AsyncSession, pay: ClaimTransition, run_id: str, now: datetime, actor_sub: str
) -> None:
    """One conditional UPDATE takes every claim in ``pay``'s source states for the run: it
    locks each row and re-checks its status, so a claim voided by a back-out that commits
    first is skipped, a back-out that comes later finds it paid, and a racing run finds it
    taken. One INSERT ... SELECT then writes the claims' events."""
    await session.execute(
        update(Claim)
        .where(Claim.status.in_(_in(pay.sources_in_order)))
        .values(
            status=pay.target,
            paid_at=now,
            payment_run_id=run_id,
            updated_at=now,
            version=Claim.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        insert(ClaimEvent).from_select(
            [
                "claim_id",
                "type",
                "status",
                "occurred_at",
                "actor_sub",
                "actor_role",
                "actor_provider_id",
                "data",
            ],
            select(
                Claim.id,
                literal(str(pay.event)),
                literal(str(pay.target)),
                literal(now, ClaimEvent.occurred_at.type),
                literal(actor_sub),
                literal(str(pay.actor)),
                literal(None),
                literal({"payment_run_id": run_id}, ClaimEvent.data.type),
            )
            .where(Claim.payment_run_id == run_id)
            .order_by(Claim.id),
        )
    )


async def paid_in_run(session: AsyncSession, run_id: str) -> list[Claim]:
    statement = select(Claim).where(Claim.payment_run_id == run_id).order_by(Claim.id)
    return list((await session.scalars(statement)).all())


async def voided_after_payment(session: AsyncSession, voided: str) -> list[Claim]:
    """Claims in the ``voided`` state that a run had paid (a run sets ``payment_run_id`` with
    the payment, and a void keeps it)."""
    statement = (
        select(Claim)
        .where(Claim.status == voided, Claim.payment_run_id.is_not(None))
        .order_by(Claim.id)
    )
    return list((await session.scalars(statement)).all())
