"""The hot path's statements on the session's own asyncpg connection (``app.core.driver``,
issue 13): compiled once with the column types' own processing, run in the request's
transaction, a constraint's refusal raised as the session would raise it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from fastapi import FastAPI
from sqlalchemy import JSON, Column, MetaData, String, Table, Text, bindparam, func, insert
from sqlalchemy import select as sa_select
from sqlalchemy import text as sa_text
from sqlalchemy.exc import DBAPIError, IntegrityError

from app.core.database import UTCDateTime, database_unavailable
from app.core.driver import DriverStatement, driver_connection, execute, fetch_row

_TABLE = Table(
    "driver_example",
    MetaData(),
    Column("id", String(10)),
    Column("at", UTCDateTime()),
    Column("data", JSON),
    Column("kind", String(10)),
)


@pytest.mark.pure
def test_parameters_are_bound_in_order_with_the_column_types_processing() -> None:
    statement = DriverStatement(
        insert(_TABLE).values(
            id=bindparam("the_id"), at=bindparam("at"), data=bindparam("data"), kind="fixed"
        )
    )
    assert "$1" in statement.sql
    assert ":the_id" not in statement.sql
    at = datetime(2026, 12, 2, 9, 30, tzinfo=timezone(timedelta(hours=1)))
    arguments = statement.arguments({"the_id": "R1", "at": at, "data": {"a": [1]}})
    assert arguments[0] == "R1"
    assert arguments[1] == at
    assert arguments[1].tzinfo == UTC
    assert arguments[2] == '{"a": [1]}'  # JSON: as text, for the codec SQLAlchemy registers
    assert arguments[3] == "fixed"  # a value the statement binds itself


@pytest.mark.pure
def test_a_naive_instant_is_refused_as_the_session_refuses_it() -> None:
    statement = DriverStatement(insert(_TABLE).values(at=bindparam("at")))
    with pytest.raises(ValueError, match="naive"):
        statement.arguments({"at": datetime(2026, 12, 2, 9, 30)})


@pytest.mark.pure
def test_an_in_list_is_refused_at_compile_time() -> None:
    # An expanding IN list is rendered per execution; the driver's SQL is rendered once.
    with pytest.raises(ValueError, match="ANY"):
        DriverStatement(sa_select(_TABLE).where(_TABLE.c.kind.in_(["a", "b"])))


@pytest.fixture
def postgres_only(is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("the driver path is PostgreSQL's")


_TXID = sa_select(func.pg_current_xact_id().cast(Text).label("txid"))


@pytest.mark.usefixtures("postgres_only")
async def test_statements_run_in_the_sessions_own_transaction(app: FastAPI) -> None:
    on_driver = DriverStatement(_TXID)
    async with app.state.sessions() as session:
        # The driver's first: it begins the session's transaction, which the session then uses.
        first = await fetch_row(session, on_driver, {})
        assert (await driver_connection(session)).is_in_transaction()
        assert first is not None
        assert first.txid == await session.scalar(_TXID)
        await session.commit()
        # After the commit, a new transaction: the connection is not taken from the old one.
        second = await fetch_row(session, on_driver, {})
        assert second is not None
        assert second.txid != first.txid
        assert second.txid == await session.scalar(_TXID)


@pytest.mark.usefixtures("postgres_only")
async def test_a_rollback_undoes_what_ran_on_the_driver(app: FastAPI) -> None:
    setting = sa_text("SELECT set_config('prap.driver_test', :value, true) AS value")
    read = sa_text("SELECT current_setting('prap.driver_test', true) AS value")
    async with app.state.sessions() as session:
        await execute(session, DriverStatement(setting), {"value": "set"})
        assert await session.scalar(read) == "set"  # the same transaction sees it
        await session.rollback()
        assert await session.scalar(read) in (None, "")


@pytest.mark.usefixtures("postgres_only")
async def test_a_constraints_refusal_is_an_integrity_error(app: FastAPI) -> None:
    duplicate = DriverStatement(
        sa_text("INSERT INTO programmes SELECT * FROM programmes WHERE code = 'JFS'")
    )
    async with app.state.sessions() as session:
        with pytest.raises(IntegrityError):
            await execute(session, duplicate, {})
        await session.rollback()


@pytest.mark.usefixtures("postgres_only")
async def test_a_lost_connection_is_the_database_unavailable_not_a_fault(app: FastAPI) -> None:
    """A connection the database dropped (a restart) raises what the session would raise,
    invalidated, so the unit of work answers 503 and never 500 (tests/system's restart test
    found a 500 when asyncpg's own ``InterfaceError`` came through raw)."""
    on_driver = DriverStatement(_TXID)
    async with app.state.sessions() as session:
        assert await fetch_row(session, on_driver, {}) is not None
        await (await driver_connection(session)).close()  # as a server's shutdown leaves it
        with pytest.raises(DBAPIError) as raised:
            await fetch_row(session, on_driver, {})
        assert raised.value.connection_invalidated
        assert database_unavailable(raised.value)
        await session.invalidate()
