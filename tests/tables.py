"""The tables a request can write, from the models' own metadata, and the one helper that
empties them: a new table is cleaned between tests (and scanned by the boundary tests)
without anyone remembering to list it. Reference data seeded by migration (a table marked
``info={"reference_data": True}``, the programme catalogue) stays."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import app.models  # noqa: F401  (registers every table on the metadata)
from app.core.database import Base

# Children first, so that SQLite's DELETEs never trip a foreign key.
MUTABLE_TABLES = tuple(
    table.name
    for table in reversed(Base.metadata.sorted_tables)
    if not table.info.get("reference_data")
)


async def empty_tables(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                text(f"TRUNCATE {', '.join(MUTABLE_TABLES)} RESTART IDENTITY CASCADE")
            )
        else:
            for table in MUTABLE_TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))
