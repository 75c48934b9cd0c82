"""Shared set-up for the benchmarks: a PostgreSQL database of their own, migrated fresh."""

from __future__ import annotations

import asyncio
import os
import resource

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.cli import migrate_database
from app.core.settings import Settings

DEFAULT_URL = "postgresql+asyncpg://prap:prap@127.0.0.1:5432/prap_bench"


def bench_url() -> str:
    return os.environ.get("PRAP_BENCH_DATABASE_URL", DEFAULT_URL)


def fresh_database(url: str) -> None:
    """Drop everything in the benchmark database and migrate it to head."""

    async def drop() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(drop())
    migrate_database(Settings(database_url=url))


async def vacuum(engine: AsyncEngine, *tables: str) -> None:
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in tables:
            await connection.execute(text(f"VACUUM ANALYZE {table}"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
