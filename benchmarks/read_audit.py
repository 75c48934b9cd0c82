"""What the read audit (domain.md §10, GEN 71) costs on the hot path.

Against PostgreSQL, in one process (the real app over httpx's ASGI transport), with 50
referrals in the database:

* statements per request: a page of 50 referrals (``GET /v1/referrals?limit=50``) and one
  referral (``GET /v1/referrals/{id}``), with the audit and with ``record_read`` switched off
  for the measurement only; the audit must add one INSERT, never one per referral;
* time per request, the two variants interleaved round by round so that a busy machine
  slows both alike (medians of the rounds);
* the audit's own INSERT of 50 rows against 50 single-row INSERTs, in one transaction each.

    .venv/bin/python -m benchmarks.read_audit --rounds 10 --requests 100
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import event, insert, text

from app.audit.models import ReferralRead
from app.core.auth import Principal, Role, mint_token
from app.core.clock import Clock
from app.core.settings import Settings
from app.main import create_app
from app.referrals import service as referrals_service
from benchmarks.common import bench_url, fresh_database

SECRET = "bench-secret"
REFERRALS = 50


def _headers(role: Role, provider_id: str | None = None) -> dict[str, str]:
    token = mint_token(
        sub=f"bench-{role}", role=role, key=SECRET, provider_id=provider_id, scopes=("referrals",)
    )
    return {"Authorization": f"Bearer {token}"}


async def _no_audit(*_args: Any, **_kwargs: Any) -> None:
    return None


async def _timed(call: Callable[[], Awaitable[Any]], requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        await call()
    return (time.perf_counter() - started) / requests * 1000


async def run(rounds: int, requests: int) -> None:
    url = bench_url()
    app = create_app(Settings(database_url=url, jwt_secret=SECRET, sandbox=True, scheduler=False))
    engine = app.state.engine
    statements: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _c, _cur, sql, *_a: statements.append(sql.split()[0].upper() + " " + sql[:60]),
    )
    jcp, staff = _headers(Role.jcp), _headers(Role.provider, "P100")
    recording = referrals_service.record_read
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://bench") as client:
        await client.post(
            "/v1/contracts",
            headers=_headers(Role.admin),
            json={
                "provider_id": "P100",
                "programme": "JFS",
                "start_date": "2020-01-01",
                "end_date": "2035-12-31",
                "monthly_service_fee_pence": 100_000,
            },
        )
        ids = []
        for n in range(REFERRALS):
            body = {
                "programme": "JFS",
                "provider_id": "P100",
                "participant": {"forename": "Load", "surname": "Test", "nino": f"AB{n:06d}C"},
            }
            ids.append((await client.post("/v1/referrals", headers=jcp, json=body)).json()["id"])

        async def page() -> None:
            response = await client.get("/v1/referrals", headers=staff, params={"limit": 50})
            assert len(response.json()["items"]) == REFERRALS

        async def one() -> None:
            assert (await client.get(f"/v1/referrals/{ids[0]}", headers=staff)).status_code == 200

        for name, call in (("list of 50", page), ("get one", one)):
            counts = {}
            for audited in (True, False):
                referrals_service.record_read = recording if audited else _no_audit  # type: ignore[assignment]
                await call()  # warm
                statements.clear()
                await call()
                counts[audited] = list(statements)
            inserts = [s for s in counts[True] if s.startswith("INSERT")]
            print(
                f"{name}: {len(counts[True])} statements with the audit "
                f"({len(inserts)} INSERT), {len(counts[False])} without"
            )
            with_audit: list[float] = []
            without: list[float] = []
            for r in range(rounds):
                for audited in (r % 2 == 0, r % 2 != 0):
                    referrals_service.record_read = recording if audited else _no_audit  # type: ignore[assignment]
                    (with_audit if audited else without).append(await _timed(call, requests))
            referrals_service.record_read = recording  # type: ignore[assignment]
            a, b = statistics.median(with_audit), statistics.median(without)
            print(
                f"{name}: {a:.2f} ms a request with the audit, {b:.2f} ms without: "
                f"+{a - b:.2f} ms ({(a - b) / b * 100:+.1f}%), medians of {rounds} rounds "
                f"of {requests}"
            )

    # The audit's one statement (record_read itself) against one INSERT per referral.
    principal = Principal(sub="bench", role=Role.provider, provider_id="P100")
    clock = Clock(datetime.now(UTC))
    row: dict[str, Any] = {
        "read_id": "X" * 26,
        "at": clock.now,
        "actor_sub": "bench",
        "actor_role": "provider",
        "actor_provider_id": "P100",
        "operation": "listReferrals",
    }
    one: list[float] = []
    each: list[float] = []
    transactions = max(requests // 5, 1)
    for _ in range(rounds):
        for kind in ("one", "each"):
            started = time.perf_counter()
            for _ in range(transactions):
                async with app.state.sessions() as session, session.begin():
                    if kind == "one":
                        await recording(session, principal, clock, "listReferrals", ids)
                    else:
                        for i in ids:
                            await session.execute(
                                insert(ReferralRead).values({**row, "referral_id": i})
                            )
            elapsed = (time.perf_counter() - started) / transactions * 1000
            (one if kind == "one" else each).append(elapsed)
    print(
        f"50 referrals: record_read (one statement) and commit {statistics.median(one):.2f} ms, "
        f"50 single-row INSERTs and commit {statistics.median(each):.2f} ms"
    )
    async with engine.connect() as connection:
        rows = await connection.scalar(text("SELECT count(*) FROM referral_reads"))
    print(f"referral_reads rows at the end: {rows}")
    await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    arguments = parser.parse_args()
    fresh_database(bench_url())
    asyncio.run(run(arguments.rounds, arguments.requests))
