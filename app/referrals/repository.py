"""Referral and event queries. Every read starts from ``readable_referrals`` or
``readable_events``: tenancy is enforced here, in one place, so that no endpoint can forget
it. A provider asking for another provider's referral finds nothing, exactly as for an id
that does not exist (domain.md §1)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, Text, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.problems import NotFound
from app.referrals.models import Referral, ReferralEvent
from app.referrals.states import ReferralAction, ReferralStatus
from app.referrals.transitions import TRANSITIONS


def readable_referrals(principal: Principal) -> Select[Referral]:
    statement = select(Referral)
    if principal.is_provider:
        statement = statement.where(Referral.provider_id == principal.provider_id)
    return statement


def readable_events(principal: Principal) -> Select[ReferralEvent]:
    statement = select(ReferralEvent)
    if principal.is_provider:
        statement = statement.where(ReferralEvent.provider_id == principal.provider_id)
    return statement


async def get_readable(
    session: AsyncSession, principal: Principal, referral_id: str, *, for_update: bool = False
) -> Referral:
    statement = readable_referrals(principal).where(Referral.id == referral_id)
    if for_update:
        # PostgreSQL: conflicting actions queue on the row; SQLite already serialises writers.
        statement = statement.with_for_update()
    referral = (await session.scalars(statement)).one_or_none()
    if referral is None:
        raise NotFound("No such referral.")
    return referral


async def prior_referrals(
    session: AsyncSession, nino_digests: list[str], programme: str
) -> list[Referral]:
    """The participant's referrals on the programme, erased ones included (domain.md §10)."""
    statement = select(Referral).where(
        Referral.nino_digest.in_(nino_digests), Referral.programme == programme
    )
    return list((await session.scalars(statement)).all())


async def past_deadline(
    session: AsyncSession, principal: Principal, today: date, limit: int
) -> list[Referral]:
    """Readable referrals whose automatic close is due and not recorded yet (JFS 3.40, 5.08),
    read through the jobs' partial indexes on the deadlines, at most ``limit`` of each."""
    dna = TRANSITIONS[ReferralAction.auto_dna].sources
    end = TRANSITIONS[ReferralAction.auto_end].sources
    found: list[Referral] = []
    for deadline, sources in ((Referral.auto_dna_on, dna), (Referral.auto_end_on, end)):
        statement = (
            readable_referrals(principal)
            .where(Referral.status.in_([str(s) for s in sources]), deadline <= today)
            .order_by(deadline, Referral.id)
            .limit(limit)
        )
        found.extend((await session.scalars(statement)).all())
    return found


async def lock_participant(session: AsyncSession, nino_digest: str) -> None:
    """Serialise referrals of one participant (PostgreSQL; SQLite's writers already queue):
    rules across programmes, such as HTW 70's exclusive programmes, have no unique index to
    hold them, so two racing referrals to CWP and another programme must not both pass."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(nino_digest, 0)))
        )


async def referrals_of(session: AsyncSession, nino_digests: list[str]) -> list[Referral]:
    """Every referral of a participant, on any programme."""
    statement = select(Referral).where(Referral.nino_digest.in_(nino_digests)).order_by(Referral.id)
    return list((await session.scalars(statement)).all())


async def open_programmes_elsewhere(
    session: AsyncSession, nino_digests: list[str], programme: str
) -> list[str]:
    """The programmes other than ``programme`` on which the participant has an open referral."""
    statement = select(Referral.programme).where(
        Referral.nino_digest.in_(nino_digests),
        Referral.programme != programme,
        Referral.status.in_([str(s) for s in ReferralStatus if s.is_open]),
    )
    return list((await session.scalars(statement)).all())


def transaction_id(dialect: str) -> ColumnElement[Any]:
    """The writing transaction's id on PostgreSQL (see ``ReferralEvent.txid``); 0 on SQLite."""
    if dialect == "postgresql":
        return cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    return literal(0, BigInteger)


def visible_horizon(dialect: str) -> ColumnElement[Any] | None:
    """Events of transactions at or past this id may still be in flight (PostgreSQL only):
    the feed holds them back so that a reader never skips one that commits later."""
    if dialect == "postgresql":
        return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
    return None
