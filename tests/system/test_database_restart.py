"""PostgreSQL restarted (and stopped for a while) under load: every answer is a 2xx or a 503
``service-unavailable`` with ``Retry-After``, never a 500 or a dropped connection; ``/readyz``
says not ready while it is down; the log has one line per failure and no traceback; the pool
recovers by itself; and no acknowledged write is lost (api-contract.md, Errors; issue "The
boundary holds").

The test runs its own PostgreSQL (initdb into a temporary directory, on a free loopback port),
so that restarting it disturbs nothing else on the machine. It needs the PostgreSQL 15 server
binaries and root (to run them as ``postgres``), and runs in the suite's PostgreSQL pass.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import migrate_database
from app.core.auth import Role
from app.core.settings import Settings
from benchmarks.load import nino
from benchmarks.server import server_env, stop_server
from tests.helpers import TEST_SECRET, token
from tests.system.test_resilience import _free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")

pytestmark = pytest.mark.skipif(
    not (PG_BIN / "pg_ctl").exists() or os.geteuid() != 0,
    reason="needs the PostgreSQL 15 server binaries and root",
)


def _as_postgres(*command: str) -> None:
    subprocess.run(
        ["su", "postgres", "-c", " ".join(command)],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass
class PrivatePostgres:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://prap@127.0.0.1:{self.port}/prap"

    def pg_ctl(self, *arguments: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1"
        _as_postgres(
            str(PG_BIN / "pg_ctl"),
            "-D", str(self.directory / "data"),
            "-l", str(self.directory / "postgres.log"),
            "-o", f"'{options}'",
            "-w", "-t", "60",
            *arguments,
        )  # fmt: skip


@pytest.fixture
def private_postgres(is_postgres: bool) -> Iterator[PrivatePostgres]:
    if not is_postgres:
        pytest.skip("runs in the PostgreSQL pass of the suite")
    directory = Path(tempfile.mkdtemp(prefix="prap-pg-"))
    shutil.chown(directory, "postgres")
    os.chmod(directory, 0o700)
    server = PrivatePostgres(directory, _free_port())
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "prap")
    server.pg_ctl("start")
    _as_postgres(
        str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(server.port), "-U", "prap", "prap"
    )
    try:
        yield server
    finally:
        server.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(directory, ignore_errors=True)


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0
    without_retry_after: int = 0
    acknowledged: list[str] = field(default_factory=list)

    def count(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503 and "retry-after" not in response.headers:
            self.without_retry_after += 1


async def _reader(client: httpx.AsyncClient, tally: Tally, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token(Role.jcp)}"}
    while not stop.is_set():
        try:
            tally.count(await client.get("/v1/referrals", headers=headers))
        except httpx.HTTPError:
            tally.dropped += 1
        await asyncio.sleep(0.01)


async def _writer(client: httpx.AsyncClient, user: int, tally: Tally, stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token(Role.jcp, sub=f'coach-{user}')}"}
    n = user * 100_000
    while not stop.is_set():
        n += 1
        body = {
            "programme": "JFS",
            "provider_id": "P100",
            "participant": {"forename": "R", "surname": "S", "nino": nino(n)},
        }
        try:
            response = await client.post(
                "/v1/referrals", headers={**headers, "Idempotency-Key": f"w{n}"}, json=body
            )
        except httpx.HTTPError:
            tally.dropped += 1
            continue
        tally.count(response)
        if response.status_code == 201:
            tally.acknowledged.append(response.json()["id"])
        await asyncio.sleep(0.01)


async def test_a_database_restart_under_load_gives_503s_not_500s(
    private_postgres: PrivatePostgres,
) -> None:
    url = private_postgres.url
    await asyncio.to_thread(migrate_database, Settings(database_url=url))
    port = _free_port()
    log_path = private_postgres.directory / "server.log"
    env = server_env(url, TEST_SECRET) | {"PRAP_LOG_LEVEL": "INFO"}
    with log_path.open("wb") as log:
        server = subprocess.Popen(  # noqa: ASYNC220 (started once, before the load)
            [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
             "--port", str(port), "--workers", "2", "--no-access-log"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    tally = Tally()
    readiness: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as client:
            for _ in range(150):
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
            admin = {"Authorization": f"Bearer {token(Role.admin)}"}
            contract = {
                "provider_id": "P100",
                "programme": "JFS",
                "start_date": "2000-01-01",
                "end_date": "2099-12-31",
                "monthly_service_fee_pence": 100000,
            }
            created = await client.post("/v1/contracts", json=contract, headers=admin)
            assert created.status_code == 201, created.text
            stop = asyncio.Event()
            load = [asyncio.create_task(_reader(client, tally, stop)) for _ in range(4)]
            load += [asyncio.create_task(_writer(client, u, tally, stop)) for u in range(2)]
            await asyncio.sleep(1.5)
            await asyncio.to_thread(private_postgres.pg_ctl, "-m", "fast", "restart")
            await asyncio.sleep(1.5)
            await asyncio.to_thread(private_postgres.pg_ctl, "-m", "fast", "stop")
            for _ in range(5):
                readiness.append((await client.get("/readyz")).status_code)
                await asyncio.sleep(0.3)
            await asyncio.to_thread(private_postgres.pg_ctl, "start")
            await asyncio.sleep(2.5)
            before_end = sum(tally.statuses.values())
            ok_before_end = tally.statuses[200] + tally.statuses[201]
            await asyncio.sleep(1.5)
            stop.set()
            await asyncio.gather(*load)
            recovered = tally.statuses[200] + tally.statuses[201] - ok_before_end
            assert recovered > 0, "the pool did not recover"
            assert sum(tally.statuses.values()) > before_end
    finally:
        await asyncio.to_thread(stop_server, server)

    log_text = log_path.read_text(errors="replace")
    print(tally.statuses, readiness, len(tally.acknowledged))
    assert set(tally.statuses) <= {200, 201, 503}, tally.statuses
    assert tally.statuses[503] > 0, "the database was never seen down"
    assert tally.without_retry_after == 0
    assert tally.dropped == 0, "a connection was dropped"
    assert 503 in readiness
    assert "Traceback" not in log_text
    assert "Exception in ASGI application" not in log_text
    failures = log_text.count("database unavailable")
    assert failures == tally.statuses[503], (failures, tally.statuses)

    engine = create_async_engine(url)
    async with engine.connect() as connection:
        stored = set((await connection.execute(text("SELECT id FROM referrals"))).scalars())
    await engine.dispose()
    missing = [rid for rid in tally.acknowledged if rid not in stored]
    assert not missing, "an acknowledged write was lost"
    assert len(tally.acknowledged) > 10
