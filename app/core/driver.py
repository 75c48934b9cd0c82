"""The hot path's statements on the session's own asyncpg connection (PostgreSQL; issue 13).

The load benchmark's profile put SQLAlchemy's execution layers (the greenlet hop, the
compiled cache's key, parameter and result processing, the ORM session's execute) at about
a third of the API's CPU on each action, against a few percent for asyncpg itself. The few
statements every request of the hot path runs are built with SQLAlchemy Core as before,
compiled for asyncpg **once** (``DriverStatement``), and run on the very connection, and in
the very transaction, of the request's session (``driver_connection``): the unit of work
still begins, commits and rolls back the request as one transaction, and everything else
keeps going through the session. On SQLite the same statement runs through the session, so a
repository calls ``fetch_row`` (or ``fetch_rows``, ``execute``) whatever the database.
"""

from __future__ import annotations

import typing
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ClauseElement, Executable
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

from app.core.database import on_postgres

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
_DRIVER = "prap.driver_connection"


class DriverStatement:
    """A Core statement compiled once for asyncpg: its SQL (``$1``, ``$2``, ...), the names
    of its parameters in that order with SQLAlchemy's own processing of each (a JSON value
    to text, an instant to UTC: the column types'), and the values it binds itself; and the
    statement itself, which SQLite runs through the session."""

    __slots__ = ("_defaults", "_names", "_processors", "_row", "sql", "statement")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        compiled = typing.cast(
            SQLCompiler, typing.cast(ClauseElement, statement).compile(dialect=_DIALECT)
        )
        if "POSTCOMPILE" in compiled.string:
            # An IN list of bound values is rendered per execution; bind an array instead.
            raise ValueError("a driver statement cannot expand IN lists: use = ANY(array)")
        self.sql = compiled.string
        names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self._names = names
        self._processors: tuple[Callable[[Any], Any] | None, ...] = tuple(
            compiled.binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            for name in names
        )
        self._defaults = {
            name: compiled.binds[name].value
            for name in names
            if compiled.binds[name].value is not None or not compiled.binds[name].required
        }
        self._row: type[tuple[Any, ...]] | None = None

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (names as the statement's bind names)."""
        arguments = []
        for name, processor in zip(self._names, self._processors, strict=True):
            value = params[name] if name in params else self._defaults[name]
            arguments.append(value if processor is None or value is None else processor(value))
        return arguments

    def row(self, record: Any) -> Any:
        """An asyncpg record as a row with attribute access, like SQLAlchemy's (the column
        types' results need no processing on asyncpg: JSON is decoded by the codec
        SQLAlchemy registers, and ``timestamptz`` comes back aware, in UTC)."""
        if self._row is None:
            self._row = namedtuple("DriverRow", list(record.keys()), rename=True)  # type: ignore[misc]
        return self._row(*record.values())


async def _adapted_connection(session: AsyncSession) -> Any:
    """SQLAlchemy's adapter of the asyncpg connection behind ``session`` (``.driver_connection``
    is asyncpg's own), with the session's transaction begun on it
    (SQLAlchemy's asyncpg adapter begins lazily, on its first statement, so a request whose
    first statement runs here begins it here). Remembered for the rest of the transaction."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_DRIVER)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    connection = await session.connection()
    # The pooled connection is already checked out by now: read it without another hop.
    adapted: Any = connection.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
    if adapted._transaction is None:
        async with adapted._execute_mutex:
            try:
                await adapted._start_transaction()
            except Exception as error:
                raise _translated(error, adapted, "BEGIN") from error
    session.info[_DRIVER] = (session.sync_session.get_transaction(), adapted)
    return adapted


async def fetch_row(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]
) -> Any | None:
    """Run ``statement`` in the session's transaction: its first row, or None."""
    if not on_postgres(session):
        return (await session.execute(statement.statement, params)).one_or_none()
    record = await _run(session, statement, params, "fetchrow")
    return None if record is None else statement.row(record)


async def fetch_rows(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]
) -> list[Any]:
    """Run ``statement`` in the session's transaction: all its rows."""
    if not on_postgres(session):
        return list((await session.execute(statement.statement, params)).all())
    return [statement.row(record) for record in await _run(session, statement, params, "fetch")]


async def execute(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any]
) -> None:
    """Run ``statement`` in the session's transaction for its effect."""
    if not on_postgres(session):
        await session.execute(statement.statement, params)
        return
    await _run(session, statement, params, "execute")


async def _run(
    session: AsyncSession, statement: DriverStatement, params: Mapping[str, Any], method: str
) -> Any:
    """asyncpg's ``method`` (fetchrow, fetch, execute) with the statement's arguments."""
    adapted = await _adapted_connection(session)
    arguments = statement.arguments(params)
    try:
        return await getattr(adapted.driver_connection, method)(statement.sql, *arguments)
    except Exception as error:
        raise _translated(error, adapted, statement.sql) from error


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection behind ``session``, in the session's transaction."""
    return (await _adapted_connection(session)).driver_connection


def _translated(error: Exception, adapted: Any, sql: str) -> Exception:
    """``error`` as the session would have raised it: asyncpg's exception translated by
    SQLAlchemy's adapter (its DB-API classes), then wrapped as SQLAlchemy's own
    (``IntegrityError`` for a constraint's refusal, ``InterfaceError`` for a closed
    connection, ...), marked invalidated when the connection is gone, so that the services
    and the unit of work (a lost database is 503, never 500) need not know which path ran the
    statement. No parameter values go into it: they may be personal data."""
    try:
        adapted._handle_exception(error)
    except Exception as dbapi_error:  # the adapter raises what it translated
        translated = dbapi_error
    return DBAPIError.instance(
        sql,
        None,
        translated,
        adapted.dbapi.Error,
        hide_parameters=True,
        connection_invalidated=adapted.driver_connection.is_closed(),
    )
