"""Referral and event queries. Every read starts from ``readable_referrals`` or
``readable_events``: tenancy is enforced here, in one place, so that no endpoint can forget
it. A provider asking for another provider's referral finds nothing, exactly as for an id
that does not exist (domain.md §1)."""

from __future__ import annotations

import enum
import functools
import json
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Executable,
    Insert,
    Row,
    Select,
    String,
    Subquery,
    Table,
    Text,
    Update,
    and_,
    any_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core import driver
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.database import on_postgres
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.core.problems import NotFound
from app.core.queries import one_or_not_found, page_by_id, visible_to, where_equal
from app.referrals.models import EVENT_COLUMNS, Referral, ReferralEvent
from app.referrals.rules import Change, DeadlineFacts
from app.referrals.states import (
    TERMINAL_STATES,
    ActorRole,
    EventType,
    ReferralAction,
    ReferralStatus,
)
from app.referrals.transitions import TRANSITIONS, Transition


def readable_referrals(principal: Principal) -> Select[Referral]:
    return visible_to(select(Referral), Referral.provider_id, principal)


def readable_events(principal: Principal) -> Select[ReferralEvent]:
    return visible_to(select(ReferralEvent), ReferralEvent.provider_id, principal)


async def get_readable(
    session: AsyncSession, principal: Principal, referral_id: str, *, for_update: bool = False
) -> Referral:
    # for_update: on PostgreSQL conflicting actions queue on the row; SQLite already
    # serialises writers.
    statement = readable_referrals(principal).where(Referral.id == referral_id)
    return await one_or_not_found(session, statement, "No such referral.", for_update=for_update)


async def lock_and_read_again(session: AsyncSession, referral_id: str) -> Referral:
    """The referral locked (PostgreSQL: a path settling it, or the job, waits or skips it;
    SQLite already serialises writers) and read again over what the session holds of it.
    Its tenancy was checked when it was first read."""
    statement = (
        select(Referral)
        .where(Referral.id == referral_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(statement)).one()


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


async def page_of(
    session: AsyncSession,
    principal: Principal,
    *,
    filters: dict[str, Any],
    referred_from: date | None,
    referred_to: date | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Referral], str | None]:
    """Readable referrals matching every given column filter, referred between the two days
    (either end may be open), in id order, a page at a time."""
    statement = where_equal(readable_referrals(principal), Referral, filters)
    if referred_from is not None:
        statement = statement.where(Referral.referral_date >= referred_from)
    if referred_to is not None:
        statement = statement.where(Referral.referral_date <= referred_to)
    return await page_by_id(session, statement, Referral.id, cursor=cursor, limit=limit)


async def found_by_nino(
    session: AsyncSession, principal: Principal, nino_digests: list[str]
) -> list[Referral]:
    """Readable referrals of the participant whose NINO has one of these digests, in id
    order. An erased referral is no longer found by the NINO (api-contract.md,
    eraseReferral)."""
    statement = (
        readable_referrals(principal)
        .where(Referral.nino_digest.in_(nino_digests), Referral.erased_at.is_(None))
        .order_by(Referral.id)
    )
    return list((await session.scalars(statement)).all())


async def readable_history(
    session: AsyncSession, principal: Principal, referral_id: str
) -> list[ReferralEvent]:
    """The referral's events, oldest first, tenancy as ``readable_events``."""
    statement = (
        readable_events(principal)
        .where(ReferralEvent.referral_id == referral_id)
        .order_by(ReferralEvent.id)
    )
    return list((await session.scalars(statement)).all())


def event_cursor(event: ReferralEvent) -> str:
    """An event's place in the change feed: (transaction id, event id)."""
    return encode_cursor(event.txid, event.id)


async def page_of_events(
    session: AsyncSession, principal: Principal, *, after: str | None, limit: int
) -> tuple[list[ReferralEvent], str | None]:
    """Readable events in commit order, (transaction id, event id), after the cursor
    ``after``, a page at a time. On PostgreSQL, events of transactions that may still be in
    flight are held back (``visible_horizon``), so a reader polling with ``after`` never
    skips an event nor sees one twice."""
    statement = readable_events(principal)
    horizon = visible_horizon(session.get_bind().dialect.name)
    if horizon is not None:
        statement = statement.where(ReferralEvent.txid < horizon)
    if after is not None:
        txid, event_id = decode_cursor(after, int, int)
        statement = statement.where(
            or_(
                ReferralEvent.txid > txid,
                and_(ReferralEvent.txid == txid, ReferralEvent.id > event_id),
            )
        )
    statement = statement.order_by(ReferralEvent.txid, ReferralEvent.id)
    return await fetch_page(session, statement, limit, event_cursor)


_LOCK_PARTICIPANT = driver.DriverStatement(
    select(func.pg_advisory_xact_lock(func.hashtextextended(bindparam("digest", type_=Text), 0)))
)


async def lock_participant(session: AsyncSession, nino_digest: str) -> None:
    """Serialise referrals of one participant (PostgreSQL; SQLite's writers already queue):
    rules across programmes, such as HTW 70's exclusive programmes, have no unique index to
    hold them, so two racing referrals to CWP and another programme must not both pass."""
    if on_postgres(session):
        await driver.execute(session, _LOCK_PARTICIPANT, {"digest": nino_digest})


_OF_PARTICIPANT = select(Referral.__table__).order_by(Referral.id)
_OF_PARTICIPANT_PG = driver.DriverStatement(
    _OF_PARTICIPANT.where(Referral.nino_digest == any_(bindparam("digests", type_=ARRAY(String))))
)


async def referrals_of(session: AsyncSession, nino_digests: list[str]) -> list[Any]:
    """Every referral of a participant, on any programme, as rows (a new referral's checks
    and subject access; on PostgreSQL on the driver: the hot path's create)."""
    if on_postgres(session):
        return await driver.fetch_rows(session, _OF_PARTICIPANT_PG, {"digests": nino_digests})
    rows = await session.execute(_OF_PARTICIPANT.where(Referral.nino_digest.in_(nino_digests)))
    return list(rows.all())


def transaction_id(dialect: str) -> ColumnElement[Any]:
    """The writing transaction's id on PostgreSQL (see ``ReferralEvent.txid``); 0 on SQLite."""
    if dialect == "postgresql":
        return cast(cast(func.pg_current_xact_id(), Text), BigInteger)
    return literal(0, BigInteger)


def add_event(
    session: AsyncSession,
    referral: Referral,
    event_type: EventType,
    occurred_at: datetime,
    actor: tuple[str, str, str | None],
    version: int,
    data: dict[str, Any],
) -> ReferralEvent:
    """Add the referral's event to the session (written by the caller's flush, with the
    change, in one transaction), stamped with the referral's provider and status and the
    writing transaction's id."""
    actor_sub, actor_role, actor_provider_id = actor
    event = ReferralEvent(
        txid=transaction_id(session.get_bind().dialect.name),
        referral_id=referral.id,
        provider_id=referral.provider_id,
        type=event_type,
        occurred_at=occurred_at,
        actor_sub=actor_sub,
        actor_role=actor_role,
        actor_provider_id=actor_provider_id,
        referral_version=version,
        status=referral.status,
        data=data,
    )
    session.add(event)
    return event


# --- the action path, in Core: no unit of work, statements built once (issue 13) -----------

_REFERRALS = typing.cast(Table, Referral.__table__)
_EVENTS = typing.cast(Table, ReferralEvent.__table__)
# A referral by id, for the caller: of any provider, or of the provider's own (tenancy as
# ``readable_referrals``); locked for an action, or plain for a read.
_BY_ID = select(_REFERRALS).where(_REFERRALS.c.id == bindparam("id"))
_OF_PROVIDER = _REFERRALS.c.provider_id == bindparam("provider_id")
_FOR_ACTION = (
    driver.DriverStatement(_BY_ID.with_for_update()),
    driver.DriverStatement(_BY_ID.where(_OF_PROVIDER).with_for_update()),
)
_READ = (driver.DriverStatement(_BY_ID), driver.DriverStatement(_BY_ID.where(_OF_PROVIDER)))


async def _one_row(
    session: AsyncSession,
    principal: Principal,
    referral_id: str,
    statements: tuple[driver.DriverStatement, driver.DriverStatement],
) -> Any:
    """One referral as a row, through the statement for the caller (a provider: its own, as
    ``readable_referrals``), on PostgreSQL on the session's driver connection."""
    of_all, of_provider = statements
    if principal.is_provider:
        params = {"id": referral_id, "provider_id": typing.cast(str, principal.provider_id)}
        row = await driver.fetch_row(session, of_provider, params)
    else:
        row = await driver.fetch_row(session, of_all, {"id": referral_id})
    if row is None:
        raise NotFound("No such referral.")
    return row


async def read_for_action(session: AsyncSession, principal: Principal, referral_id: str) -> Any:
    """The referral as a row, locked for the action (PostgreSQL: conflicting actions queue on
    it; SQLite already serialises writers). Tenancy as ``readable_referrals``: another
    provider's referral is not found."""
    return await _one_row(session, principal, referral_id, _FOR_ACTION)


async def read_referral(session: AsyncSession, principal: Principal, referral_id: str) -> Any:
    """The referral as a row, for a read (``getReferral``), tenancy as ``read_for_action``."""
    return await _one_row(session, principal, referral_id, _READ)


# The event's columns the action fills, besides those read from the changed row.
_EVENT_VALUES = ("type", "occurred_at", "actor_sub", "actor_role", "actor_provider_id", "data")


# The outbox's INSERT ... SELECT for the events a subquery describes (the columns of
# ``announced_events``): webhooks builds it (``webhooks.service.deliveries_for``), and the
# write runs it with the event, so an action announces its event in the same round trip.
Announce = Callable[[Subquery], Insert]


def _with_event(dml: Any, announce: Announce) -> Select[Any]:
    """PostgreSQL: the referral's INSERT or UPDATE ``dml`` (``RETURNING *``), its event's
    INSERT and the event's pending webhook deliveries (``announce``) as one statement
    (data-modifying CTEs, each run once whether or not the outer query reads it), so a
    write is one round trip; the event takes the written row's id, provider, version and
    status, the rest from binds."""
    written_row = dml.cte("written_row")
    event_values = [bindparam(f"event_{n}", type_=_EVENTS.c[n].type) for n in _EVENT_VALUES]
    e = _EVENTS.c
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
        .returning(e.id, e.referral_id, e.provider_id, e.type, e.occurred_at)
        .cte("written_event")
    )
    announced = select(
        event.c.id.label("event_id"),
        event.c.referral_id,
        event.c.provider_id,
        event.c.type,
        event.c.occurred_at,
    ).subquery("announced")
    return (
        select(written_row, event.c.id.label("event_id"))
        .select_from(written_row.join(event, true()))
        .add_cte(announce(announced).cte("announced_deliveries"))
    )


@functools.cache
def _change_statement(columns: tuple[str, ...], sources: tuple[str, ...]) -> Executable:
    """``UPDATE referrals SET <columns>, version = version + 1 WHERE id = :the_id AND status IN
    (<sources>) AND version = :v RETURNING *``, one per shape, built once (SQLite)."""
    return _change(columns, _REFERRALS.c.status.in_(sources))


@functools.cache
def _change_statement_pg(
    columns: tuple[str, ...], sources: tuple[str, ...], announce: Announce
) -> driver.DriverStatement:
    """The same on PostgreSQL, ``status = ANY(<sources>)``, with its event and the event's
    deliveries in the same statement, compiled once for the driver connection."""
    status_in_sources = _REFERRALS.c.status == any_(
        bindparam("sources", list(sources), type_=ARRAY(String))
    )
    return driver.DriverStatement(_with_event(_change(columns, status_in_sources), announce))


def _change(columns: tuple[str, ...], status_in_sources: ColumnElement[bool]) -> Update:
    r = _REFERRALS.c
    return (
        update(_REFERRALS)
        .where(r.id == bindparam("the_id"), status_in_sources, r.version == bindparam("v"))
        .values(
            {name: bindparam(f"set_{name}", type_=r[name].type) for name in columns}
            | {"version": r.version + 1}
        )
        .returning(*_REFERRALS.c)
    )


def _insert(columns: tuple[str, ...]) -> Insert:
    return (
        insert(_REFERRALS)
        .values({name: bindparam(f"new_{name}", type_=_REFERRALS.c[name].type) for name in columns})
        .returning(*_REFERRALS.c)
    )


@functools.cache
def _insert_statement(columns: tuple[str, ...]) -> Executable:
    """``INSERT INTO referrals (<columns>) VALUES (...) RETURNING *``, one per shape, built
    once (SQLite)."""
    return _insert(columns)


@functools.cache
def _insert_statement_pg(columns: tuple[str, ...], announce: Announce) -> driver.DriverStatement:
    """The same on PostgreSQL with its event and the event's deliveries in the same
    statement, for the driver."""
    return driver.DriverStatement(_with_event(_insert(columns), announce))


_INSERT_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)
# The event just written, its id bound as ``event_id`` at execution.
EVENT_BY_BOUND_ID = select(_EVENTS.c.id).where(_EVENTS.c.id == bindparam("event_id"))


@functools.cache
def _announce_one(announce: Announce) -> Insert:
    """SQLite: the deliveries of the one event whose id is bound as ``event_id``."""
    return announce(announced_events(EVENT_BY_BOUND_ID))


async def _write(
    session: AsyncSession,
    postgres_statement: driver.DriverStatement,
    sqlite_statement: Executable,
    params: dict[str, Any],
    event: dict[str, Any],
    announce: Announce,
) -> tuple[Any, int] | None:
    """Run a referral write, its event's INSERT and the event's deliveries: one statement on
    PostgreSQL (on the driver connection), three on SQLite. None when the write touched no
    row."""
    if on_postgres(session):
        params = params | {f"event_{name}": event[name] for name in _EVENT_VALUES}
        result = await driver.fetch_row(session, postgres_statement, params)
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
    await session.execute(_announce_one(announce), {"event_id": event_id})
    return written, int(event_id)


async def insert_referral(
    session: AsyncSession, values: dict[str, Any], event: dict[str, Any], announce: Announce
) -> tuple[Row[Any], int]:
    """Add a referral (``values``: its columns), its ``created`` event (``event``: the
    ``_EVENT_VALUES``) and the event's deliveries (``announce``). Raises IntegrityError when
    a unique index refuses it."""
    columns = tuple(values)
    written = await _write(
        session,
        _insert_statement_pg(columns, announce),
        _insert_statement(columns),
        {f"new_{name}": value for name, value in values.items()},
        event,
        announce,
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
    announce: Announce,
) -> tuple[Row[Any], int] | None:
    """Write an action's change, conditional on the states it leaves and the version read,
    its event (``event``: the ``_EVENT_VALUES``) and the event's deliveries (``announce``),
    in the request's transaction. Returns the changed row and the event's id, or None when
    another request changed it meanwhile."""
    key = (tuple(fields), tuple(sorted(sources)))
    params = {f"set_{name}": value for name, value in fields.items()} | {
        "the_id": referral_id,
        "v": version,
    }
    return await _write(
        session,
        _change_statement_pg(*key, announce),
        _change_statement(*key),
        params,
        event,
        announce,
    )


def visible_horizon(dialect: str) -> ColumnElement[Any] | None:
    """Events of transactions at or past this id may still be in flight (PostgreSQL only):
    the feed holds them back so that a reader never skips one that commits later."""
    if dialect == "postgresql":
        return cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
    return None


# --- for other features ---
# Queries other features need of referrals and their events, reached only through the
# public functions at the end of ``referrals.service`` (tests/system/test_feature_boundaries).


async def recorded_start_or_end(
    session: AsyncSession, referral_id: str, sub: str, provider_id: str | None
) -> bool:
    """GEN 122: did this person record the referral's start or end?"""
    statement = select(
        exists().where(
            ReferralEvent.referral_id == referral_id,
            ReferralEvent.type.in_([EventType.started, EventType.ended]),
            ReferralEvent.actor_sub == sub,
            ReferralEvent.actor_provider_id == provider_id,
        )
    )
    return bool(await session.scalar(statement))


def referral_month(dialect: str) -> ColumnElement[str]:
    """The referral date's calendar month, ``YYYY-MM``, in SQL."""
    if dialect == "postgresql":
        return func.to_char(Referral.referral_date, "YYYY-MM")
    return func.strftime("%Y-%m", Referral.referral_date)


def _count(*conditions: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(and_(*conditions))


async def cohort_counts(
    session: AsyncSession, contract_id: str, first: date, last: date
) -> list[Any]:
    """CSS 1 and CSS 2 counts per cohort month of the contract's referrals (JFS 7.44,
    domain.md §9): one SQL aggregate, never the rows. Each referral carries its CSS
    deadlines and the day its outcome was first recorded, so it compares plain dates."""
    dialect = session.get_bind().dialect.name
    month = referral_month(dialect).label("month")
    not_rejected = Referral.status != ReferralStatus.rejected
    statement = (
        select(
            month,
            # CSS 1: referrals whose participant had an initial meeting (a start, or a
            # did-not-start with its meeting date); met when held by the 8th working day.
            _count(
                Referral.initial_meeting_date.is_not(None),
                Referral.initial_meeting_due.is_not(None),
            ).label("css1_eligible"),
            _count(Referral.initial_meeting_date <= Referral.initial_meeting_due).label("css1_met"),
            # CSS 2: referrals not rejected; met when a start, DNA or DNS was recorded by the
            # 10th working day (auto DNA records nothing, so it is not met).
            _count(not_rejected, Referral.outcome_recorded_due.is_not(None)).label("css2_eligible"),
            _count(
                not_rejected, Referral.outcome_recorded_on <= Referral.outcome_recorded_due
            ).label("css2_met"),
        )
        .where(
            Referral.contract_id == contract_id,
            Referral.referral_date >= first,
            Referral.referral_date <= last,
        )
        .group_by(month)
    )
    if dialect == "postgresql":
        # A contract's cohort is most of its rows: a generic cached plan (which asyncpg's
        # prepared statements get after five runs) walks the index row by row, 2-4x slower
        # than the plan made for the actual bounds (benchmarks/service_credits.py).
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return list((await session.execute(statement)).all())


async def referral_months(
    session: AsyncSession, contract_ids: Sequence[str], up_to: date
) -> set[tuple[str, str]]:
    """(contract id, month) for every month up to ``up_to`` in which referrals were made to
    these contracts (JFS 6.03)."""
    if not contract_ids:
        return set()
    month = referral_month(session.get_bind().dialect.name).label("month")
    statement = (
        select(Referral.contract_id, month)
        .where(Referral.contract_id.in_(contract_ids), Referral.referral_date <= up_to)
        .group_by(Referral.contract_id, month)
    )
    return {(row.contract_id, row.month) for row in await session.execute(statement)}


def announced_events(events: Select[int]) -> Subquery:
    """What the outbox needs of the events ``events`` selects (their ids): one subquery, so
    the jobs' deliveries are written set-based (app.webhooks)."""
    return (
        select(
            ReferralEvent.id.label("event_id"),
            ReferralEvent.referral_id,
            ReferralEvent.provider_id,
            ReferralEvent.type,
            ReferralEvent.occurred_at,
        )
        .where(ReferralEvent.id.in_(events))
        .subquery("announced")
    )


async def events_by_id(session: AsyncSession, event_ids: Sequence[int]) -> list[ReferralEvent]:
    statement = select(ReferralEvent).where(ReferralEvent.id.in_(event_ids))
    return list((await session.scalars(statement)).all())


async def events_of_referrals(
    session: AsyncSession, referral_ids: Sequence[str]
) -> list[ReferralEvent]:
    statement = (
        select(ReferralEvent)
        .where(ReferralEvent.referral_id.in_(referral_ids))
        .order_by(ReferralEvent.referral_id, ReferralEvent.id)
    )
    return list((await session.scalars(statement)).all())


def _quoted(values: typing.Iterable[str]) -> str:
    # Constants of the calling feature's rules only, never input.
    return ", ".join(f"'{v}'" for v in sorted(values))


# Each event keeps only the fields named (json_each and an aggregate exist on both
# databases, under these names).
_SCRUB_EVENTS = """
UPDATE referral_events SET data = COALESCE((
    SELECT {aggregate}(f.key, f.value) FROM json_each(referral_events.data) AS f
    WHERE f.key IN ({kept})
       OR (f.key = 'reason' AND referral_events.type IN ({coded}))
), {empty})
WHERE referral_id IN :ids
"""


async def scrub_event_data(
    session: AsyncSession,
    referral_ids: Sequence[str],
    *,
    kept_fields: frozenset[str],
    coded_reason_events: frozenset[str],
) -> None:
    """Keep only ``kept_fields`` of these referrals' events (and ``reason`` where it is a
    code): one statement, whatever the number of referrals."""
    postgres = on_postgres(session)
    scrub = _SCRUB_EVENTS.format(
        aggregate="json_object_agg" if postgres else "json_group_object",
        empty="CAST('{}' AS json)" if postgres else "json('{}')",
        kept=_quoted(kept_fields),
        coded=_quoted(coded_reason_events),
    )
    await session.execute(
        text(scrub).bindparams(bindparam("ids", expanding=True)), {"ids": list(referral_ids)}
    )


def _not_erased(referral_ids: Sequence[str]) -> tuple[ColumnElement[bool], ...]:
    return (Referral.id.in_(referral_ids), Referral.erased_at.is_(None))


async def not_erased(session: AsyncSession, referral_ids: Sequence[str]) -> list[str]:
    statement = select(Referral.id).where(*_not_erased(referral_ids))
    return list((await session.scalars(statement)).all())


async def add_events_set_based(
    session: AsyncSession,
    referral_ids: Sequence[str],
    event_type: EventType,
    occurred_at: Any,
    actor: tuple[str, str, str | None],
    data: dict[str, object],
) -> None:
    """One event each for those of these referrals not erased yet, one INSERT ... SELECT."""
    dialect = session.get_bind().dialect.name
    await session.execute(
        insert(typing.cast(Table, ReferralEvent.__table__)).from_select(
            EVENT_COLUMNS,
            select(
                transaction_id(dialect),
                Referral.id,
                Referral.provider_id,
                literal(str(event_type), String),
                literal(occurred_at, ReferralEvent.occurred_at.type),
                literal(actor[0], String),
                literal(actor[1], String),
                literal(actor[2], String),
                Referral.version + 1,
                Referral.status,
                literal(data, ReferralEvent.data.type),
            )
            .where(*_not_erased(referral_ids))
            .order_by(Referral.id),
        )
    )


def events_of_type(referral_ids: Sequence[str], event_type: EventType) -> Select[int]:
    return select(ReferralEvent.id).where(
        ReferralEvent.referral_id.in_(referral_ids), ReferralEvent.type == str(event_type)
    )


async def clear_personal_data(session: AsyncSession, referral_ids: Sequence[str], now: Any) -> int:
    result = await session.execute(
        update(Referral)
        .where(*_not_erased(referral_ids))
        .values(
            participant=None,
            markers=None,
            details=None,
            mappa=None,
            erased_at=now,
            updated_at=now,
            version=Referral.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def closed_not_erased(
    session: AsyncSession, contract_ids: Sequence[str], after: str, limit: int
) -> list[str]:
    """A batch of closed, not yet erased referrals of these contracts, by id after
    ``after``; on PostgreSQL locked ``SKIP LOCKED``, so replicas share the work."""
    statement = (
        select(Referral.id)
        .where(
            Referral.contract_id.in_(contract_ids),
            Referral.status.in_([str(s) for s in TERMINAL_STATES]),
            Referral.erased_at.is_(None),
            Referral.id > after,
        )
        .order_by(Referral.id)
        .limit(limit)
    )
    if on_postgres(session):
        statement = statement.with_for_update(skip_locked=True)
    return list((await session.scalars(statement)).all())


async def with_participant_after(session: AsyncSession, after: str, limit: int) -> list[Any]:
    """(id, nino_digest, participant) of referrals that still hold a participant."""
    statement = (
        select(Referral.id, Referral.nino_digest, Referral.participant)
        .where(Referral.id > after, Referral.participant.is_not(None))
        .order_by(Referral.id)
        .limit(limit)
    )
    return list((await session.execute(statement)).all())


async def set_nino_digest(session: AsyncSession, referral_id: str, digest: str) -> None:
    await session.execute(
        update(Referral)
        .where(Referral.id == referral_id)
        .values(nino_digest=digest)
        .execution_options(synchronize_session=False)
    )


# --- the daily closes (JFS 3.40, 5.08), set-based: the jobs' batches -------------------------
# Each batch is one statement (PostgreSQL) or three (SQLite): rows are never loaded into
# Python one by one, and memory does not grow with the number of referrals. On PostgreSQL the
# batch takes its rows ``FOR UPDATE SKIP LOCKED``, and every statement re-checks the status,
# so concurrent runs in several replicas close each referral once, with one event. On SQLite
# writers are serialised by the database lock. What a batch writes is a system row of the
# transition table: its deadline column (whose partial index serves the batch), its source
# states, its target and event, and its effect.


def set_based_change(transition: Transition, clock: Clock, as_of: date) -> Change:
    """The system row's effect, set-based: the column values every closed referral takes (a
    value read from the referral is its column) and the event's data, as of the run's day.
    The same effect closes one referral on a read (``service.settle_deadlines``)."""
    change = transition.effect(typing.cast(DeadlineFacts, Referral), None, None, clock)
    return Change(change.fields, change.event_data | {"as_of": as_of.isoformat()})


def _sources(transition: Transition) -> tuple[ReferralStatus, ...]:
    # In the states' own order, so each job's statement is the same text every time.
    return tuple(s for s in ReferralStatus if s in transition.sources)


def _sql_value(value: object) -> object:
    """A bind value as the driver wants it (enums as their plain values)."""
    if isinstance(value, enum.StrEnum):
        return str(value)
    if isinstance(value, enum.IntEnum):
        return int(value)
    return value


@dataclass(frozen=True, slots=True)
class ClosedBatch:
    """A batch the system closed: how many, its last key (deadline, id) for the next batch,
    and a select of the events it wrote (for the outbox)."""

    count: int
    last: tuple[date, str]
    events: Select[int]


# PostgreSQL: one statement per batch. Lock what is due and unlocked, close it, write its
# events, and report the batch's last key for the next one.
_CLOSE_DUE_PG = """
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


async def close_due_batch(
    session: AsyncSession,
    transition: Transition,
    clock: Clock,
    as_of: date,
    after: tuple[date, str],
    batch_size: int,
) -> ClosedBatch | None:
    """Close up to ``batch_size`` referrals whose system close ``transition`` fell due by
    ``as_of``, in (deadline, id) order after ``after``, with their events. None when none was
    left. PostgreSQL in one statement (``_close_due_postgres``), SQLite in three, here."""
    assert transition.deadline is not None
    if on_postgres(session):
        return await _close_due_postgres(session, transition, clock, as_of, after, batch_size)
    deadline = getattr(Referral, str(transition.deadline))
    due = (
        select(Referral.id, deadline)
        .where(
            Referral.status.in_([str(s) for s in _sources(transition)]),
            deadline <= as_of,
            tuple_(deadline, Referral.id) > tuple_(literal(after[0], Date), literal(after[1])),
        )
        .order_by(deadline, Referral.id)
        .limit(batch_size)
    )
    keys = (await session.execute(due)).all()
    if not keys:
        return None
    ids = [k.id for k in keys]
    change = set_based_change(transition, clock, as_of)
    values = {name: _sql_value(value) for name, value in change.fields.items()}
    values |= {"updated_at": clock.now, "version": Referral.version + 1}
    # The events first, from the rows as they stand, then the change itself.
    await session.execute(
        insert(_EVENTS).from_select(
            EVENT_COLUMNS,
            select(
                literal(0),
                Referral.id,
                Referral.provider_id,
                literal(str(transition.event), String),
                literal(clock.now, ReferralEvent.occurred_at.type),
                literal(str(ActorRole.system), String),
                literal(str(ActorRole.system), String),
                literal(None, String),
                Referral.version + 1,
                literal(str(transition.target), String),
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
    # The events just written (a referral is closed by the system once).
    return ClosedBatch(len(ids), (keys[-1][1], keys[-1].id), events_of_type(ids, transition.event))


async def _close_due_postgres(
    session: AsyncSession,
    transition: Transition,
    clock: Clock,
    as_of: date,
    after: tuple[date, str],
    batch_size: int,
) -> ClosedBatch | None:
    deadline = str(transition.deadline)
    sources = ", ".join(f"'{s}'" for s in _sources(transition))
    change = set_based_change(transition, clock, as_of)
    # Each column takes the effect's value, bound (its type inferred from the column), or
    # another column of the same row (auto end: the end date is the ``auto_end_on`` day).
    assignments, values = [], {}
    for name, value in change.fields.items():
        if isinstance(value, InstrumentedAttribute):
            assignments.append(f"{name} = r.{value.key}")
        else:
            assignments.append(f"{name} = :set_{name}")
            values[f"set_{name}"] = _sql_value(value)
    sql = _CLOSE_DUE_PG.format(
        sources=sources, deadline=deadline, assignments=", ".join(assignments)
    )
    row = (
        await session.execute(
            text(sql),
            {
                "as_of": as_of,
                "after_day": after[0],
                "after_id": after[1],
                "batch_size": batch_size,
                "target": str(transition.target),
                "now": clock.now,
                "event": str(transition.event),
                "data": json.dumps(change.event_data),
                **values,
            },
        )
    ).first()
    if row is None:
        return None
    # This transaction's events of this close.
    events = select(ReferralEvent.id).where(
        ReferralEvent.txid == transaction_id("postgresql"),
        ReferralEvent.type == str(transition.event),
    )
    return ClosedBatch(int(row.changed), (row.due, row.id), events)
