"""Test fixtures: the real app over HTTP (httpx ASGITransport) against a real database.

The database is chosen by ``PRAP_TEST_DATABASE_URL`` (default: a fresh SQLite file). The
schema is built by running the migrations, once per session; each test starts from empty
tables (the programme catalogue, seeded by migration, stays).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import migrate_database
from app.core.settings import Settings
from app.main import create_app
from tests.helpers import TEST_SECRET, Api
from tests.tables import empty_tables


def _database_url() -> str:
    url = os.environ.get("PRAP_TEST_DATABASE_URL")
    if url:
        return url
    directory = Path(tempfile.mkdtemp(prefix="prap-test-"))
    return f"sqlite+aiosqlite:///{directory / 'test.db'}"


@pytest.fixture(scope="session")
def database_url() -> str:
    url = _database_url()
    if url.startswith("postgresql"):
        _reset_postgres(url)
    migrate_database(Settings(database_url=url))
    return url


def _reset_postgres(url: str) -> None:
    import asyncio

    async def reset() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as connection:
            await connection.execute(text("DROP SCHEMA public CASCADE"))
            await connection.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        jwt_secret=TEST_SECRET,
        sandbox=True,
        scheduler=False,
        webhooks=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    yield application
    await application.state.engine.dispose()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "pure: tests pure functions only; no app, no database, no table cleaning"
    )


@pytest.fixture(autouse=True)
def _clean_tables(request: pytest.FixtureRequest) -> None:
    """Each test starts from empty tables, except a ``pure`` one, which needs no database
    (the rules' own tests run with none at all)."""
    if request.node.get_closest_marker("pure") is None:
        request.getfixturevalue("_empty_tables")


@pytest.fixture
async def _empty_tables(app: FastAPI) -> None:
    await empty_tables(app.state.engine)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://prap.test") as c:
        yield c


@pytest.fixture
def api(client: AsyncClient) -> Api:
    return Api(client)


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")
