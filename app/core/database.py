"""One async engine and session factory per process; the declarative base.

Transactions: one per request, opened and committed by the unit of work
(``app.core.unit_of_work``, run by the request pipeline); services only ``flush()``. On
SQLite every transaction is ``BEGIN IMMEDIATE`` so that writers queue on the database lock
instead of failing to upgrade a read lock mid-transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Dialect, Integer, MetaData, TypeDecorator, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.core.settings import Settings

# Constraint names are deterministic so that migrations can name what they drop.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """An instant, stored in UTC and always handed back timezone-aware (SQLite keeps none)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored: give a timezone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the driver so that "begin" below decides.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30})
        sync_engine: Engine = engine.sync_engine
        event.listen(sync_engine, "connect", _sqlite_pragmas)
        event.listen(sync_engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_async_engine(
        settings.database_url,
        # Every connection, once opened, stays in the pool: an overflow connection would be
        # closed on its return and opened again under the next burst, paying the connection
        # set-up and re-preparing every statement (asyncpg's cache is per connection) over
        # and over, which the load benchmark showed as pool churn on the hot path.
        pool_size=settings.db_pool_size,
        max_overflow=0,
        # A dropped connection fails one request and invalidates the pool; pinging instead
        # costs a round trip on every request (PRAP_DB_PRE_PING=1 to prefer that).
        pool_pre_ping=settings.db_pre_ping,
        pool_recycle=1800,
    )


def on_postgres(session: AsyncSession) -> bool:
    """Whether ``session`` talks to PostgreSQL (else the embedded SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# SQLSTATEs that mean "the database is not there for us now": class 08 (connection exception),
# 53300 (too many connections) and 57P01-57P03 (shut down, crashed, starting up).
_UNAVAILABLE_STATES = ("08", "53300", "57P01", "57P02", "57P03")


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database cannot be reached right now (restarting, down,
    out of connections, a connection it killed), as opposed to a fault in the request. These
    are answered 503 ``service-unavailable`` with ``Retry-After``, never 500."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(
            current,
            OSError | TimeoutError | sa_exc.TimeoutError | sa_exc.InterfaceError,
        ):
            return True
        if isinstance(current, sa_exc.OperationalError):
            return True  # SQLite: locked or unopenable; PostgreSQL: connection-level faults
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_STATES):
            return True
        current = current.__cause__ or current.__context__
    return False
