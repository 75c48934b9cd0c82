"""Referral and event queries. Every read starts from ``readable_referrals`` or
``readable_events``: tenancy is enforced here, in one place, so that no endpoint can forget
it. A provider asking for another provider's referral finds nothing, exactly as for an id
that does not exist (domain.md §1)."""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Executable,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.problems import NotFound
from app.referrals.models import Referral, ReferralEvent
from app.referrals.states import ReferralAction
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


def transaction_id(dialect: str) -> ColumnElement[Any]:
    """The writing transaction's id on PostgreSQL (see ``ReferralEvent.txid``); 0 on SQLite."""
    if dialect == "postgresql":
        return cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    return literal(0, BigInteger)


# --- the action path, in Core: no unit of work, statements built once (issue 13) -----------

_REFERRALS = typing.cast(Table, Referral.__table__)
_EVENTS = typing.cast(Table, ReferralEvent.__table__)
_FOR_ACTION = select(_REFERRALS).where(_REFERRALS.c.id == bindparam("id")).with_for_update()
_FOR_ACTION_OF_PROVIDER = _FOR_ACTION.where(_REFERRALS.c.provider_id == bindparam("provider_id"))


async def read_for_action(
    session: AsyncSession, principal: Principal, referral_id: str
) -> Row[Any]:
    """The referral as a row, locked for the action (PostgreSQL: conflicting actions queue on
    it; SQLite already serialises writers). Tenancy as ``readable_referrals``: another
    provider's referral is not found."""
    if principal.is_provider:
        statement = _FOR_ACTION_OF_PROVIDER
        params = {"id": referral_id, "provider_id": principal.provider_id}
    else:
        statement, params = _FOR_ACTION, {"id": referral_id}
    row = (await session.execute(statement, params)).one_or_none()
    if row is None:
        raise NotFound("No such referral.")
    return row


# The event's columns the action fills, besides those read from the changed row.
_EVENT_VALUES = ("type", "occurred_at", "actor_sub", "actor_role", "actor_provider_id", "data")


def _with_event(dml: Any) -> Executable:
    """PostgreSQL: the referral's INSERT or UPDATE ``dml`` (``RETURNING *``) and its event's
    INSERT as one statement (data-modifying CTEs), so a write is one round trip; the event
    takes the written row's id, provider, version and status, the rest from binds."""
    written_row = dml.cte("written_row")
    event_values = [bindparam(f"event_{n}", type_=_EVENTS.c[n].type) for n in _EVENT_VALUES]
    event = (
        insert(_EVENTS)
        .from_select(
            ["txid", "referral_id", "provider_id", "referral_version", "status", *_EVENT_VALUES],
            select(
                transaction_id("postgresql"),
                written_row.c.id,
                written_row.c.provider_id,
                written_row.c.version,
                written_row.c.status,
                *event_values,
            ),
        )
        .returning(_EVENTS.c.id)
        .cte("written_event")
    )
    return select(written_row, event.c.id.label("event_id")).select_from(
        written_row.join(event, true())
    )


@functools.cache
def _change_statement(
    columns: tuple[str, ...], sources: tuple[str, ...], postgres: bool
) -> Executable:
    """``UPDATE referrals SET <columns>, version = version + 1 WHERE id = :the_id AND status IN
    (<sources>) AND version = :v RETURNING *``, one per shape, built once; on PostgreSQL
    with its event in the same statement."""
    r = _REFERRALS.c
    change = (
        update(_REFERRALS)
        .where(r.id == bindparam("the_id"), r.status.in_(sources), r.version == bindparam("v"))
        .values(
            {name: bindparam(f"set_{name}", type_=r[name].type) for name in columns}
            | {"version": r.version + 1}
        )
        .returning(*_REFERRALS.c)
    )
    return _with_event(change) if postgres else change


@functools.cache
def _insert_statement(columns: tuple[str, ...], postgres: bool) -> Executable:
    """``INSERT INTO referrals (<columns>) VALUES (...) RETURNING *``, one per shape, built
    once; on PostgreSQL with its event in the same statement."""
    new = (
        insert(_REFERRALS)
        .values({name: bindparam(f"new_{name}", type_=_REFERRALS.c[name].type) for name in columns})
        .returning(*_REFERRALS.c)
    )
    return _with_event(new) if postgres else new


_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
_EVENT_BY_ID = select(_EVENTS.c.id).where(_EVENTS.c.id == bindparam("event_id"))


def event_by_id(event_id: int) -> Select[Any]:
    """The event just written, as the outbox's set-based enqueue selects it."""
    return _EVENT_BY_ID.params(event_id=event_id)


async def _write(
    session: AsyncSession,
    postgres_statement: Executable,
    sqlite_statement: Executable,
    params: dict[str, Any],
    event: dict[str, Any],
) -> tuple[Row[Any], int] | None:
    """Run a referral write and its event's INSERT: one statement on PostgreSQL, two on
    SQLite. None when the write touched no row."""
    if session.get_bind().dialect.name == "postgresql":
        params = params | {f"event_{name}": event[name] for name in _EVENT_VALUES}
        result = (await session.execute(postgres_statement, params)).one_or_none()
        return None if result is None else (result, int(result.event_id))
    written = (await session.execute(sqlite_statement, params)).one_or_none()
    if written is None:
        return None
    event_id = await session.scalar(
        _INSERT_EVENT,
        {
            "txid": 0,
            "referral_id": written.id,
            "provider_id": written.provider_id,
            "referral_version": written.version,
            "status": written.status,
            **event,
        },
    )
    assert event_id is not None
    return written, int(event_id)


async def insert_referral(
    session: AsyncSession, values: dict[str, Any], event: dict[str, Any]
) -> tuple[Row[Any], int]:
    """Add a referral (``values``: its columns) and its ``created`` event (``event``: the
    ``_EVENT_VALUES``). Raises IntegrityError when a unique index refuses it."""
    columns = tuple(values)
    written = await _write(
        session,
        _insert_statement(columns, True),
        _insert_statement(columns, False),
        {f"new_{name}": value for name, value in values.items()},
        event,
    )
    assert written is not None
    return written


async def write_change(
    session: AsyncSession,
    referral_id: str,
    version: int,
    sources: Iterable[str],
    fields: dict[str, Any],
    event: dict[str, Any],
) -> tuple[Row[Any], int] | None:
    """Write an action's change, conditional on the states it leaves and the version read,
    and its event (``event``: the ``_EVENT_VALUES``), in the request's transaction. Returns
    the changed row and the event's id, or None when another request changed it meanwhile."""
    key = (tuple(fields), tuple(sorted(sources)))
    params = {f"set_{name}": value for name, value in fields.items()} | {
        "the_id": referral_id,
        "v": version,
    }
    return await _write(
        session, _change_statement(*key, True), _change_statement(*key, False), params, event
    )


def visible_horizon(dialect: str) -> ColumnElement[Any] | None:
    """Events of transactions at or past this id may still be in flight (PostgreSQL only):
    the feed holds them back so that a reader never skips one that commits later."""
    if dialect == "postgresql":
        return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
    return None
