"""The automatic jobs (domain.md §6; JFS 3.40 auto DNA, JFS 5.08 auto end)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text

from app.core.clock import Clock
from app.core.settings import Settings
from app.jobs.scheduler import run_daily_jobs, seconds_until_next_run
from app.jobs.service import Job, Trigger, run_job
from app.main import create_app
from tests.helpers import (
    ADMIN,
    JCP,
    POST,
    PROVIDER_A,
    Api,
    act,
    assert_problem,
    create_referral,
    referral_body,
)

NINOS = ["AB123456C", "CE123456D", "JK654321A", "ST112233B", "WX998877C", "HJ135792D"]


async def _history(client: AsyncClient, rid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/referrals/{rid}/history", headers=POST)
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _get(client: AsyncClient, rid: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/referrals/{rid}", headers=POST)).json()
    return body


async def _run(client: AsyncClient, job: str, as_of: str | None = None) -> dict[str, Any]:
    body = {"as_of": as_of} if as_of else {}
    response = await client.post(f"/v1/jobs/{job}/runs", headers=ADMIN, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_auto_dna_boundary_day_29_open_day_30_closed(client: AsyncClient, api: Api) -> None:
    """JFS 3.40 (reading, domain.md §6): referral 1 March 2026 is still open on 30 March and
    closed from 31 March, in each of referred, acknowledged and accepted."""
    await api.set_today("2026-03-01")
    await api.create_contract()
    referred = await create_referral(client, nino=NINOS[0])
    acknowledged = await create_referral(client, nino=NINOS[1])
    accepted = await create_referral(client, nino=NINOS[2])
    await api.set_today("2026-03-02")
    assert (await act(client, acknowledged["id"], "acknowledge")).status_code == 200
    assert (await act(client, accepted["id"], "accept")).status_code == 200
    await api.set_today("2026-03-31")
    assert (await _run(client, "auto-dna", "2026-03-30"))["closed"] == 0
    result = await _run(client, "auto-dna")
    assert result["closed"] == 3
    assert result["as_of"] == "2026-03-31"
    for referral in (referred, acknowledged, accepted):
        current = await _get(client, referral["id"])
        assert current["status"] == "cancelled"
        assert current["cancellation_reason"] == "did_not_attend"
        assert current["closed_by"] == "system"
        assert current["version"] == referral["version"] + (1 if referral is referred else 2)
        last = (await _history(client, referral["id"]))[-1]
        assert last["type"] == "auto_did_not_attend"
        assert last["actor"]["role"] == "system"
        assert last["version"] == current["version"]


async def test_auto_dna_leaves_started_and_closed_referrals(client: AsyncClient, api: Api) -> None:
    """JFS 3.40: only referrals without a start or an outcome are closed."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    started = await create_referral(client, nino=NINOS[0])
    rejected = await create_referral(client, nino=NINOS[1])
    await act(client, started["id"], "accept")
    await act(client, started["id"], "start", {"start_date": "2026-03-02"})
    await act(client, rejected["id"], "reject", {"reason": "duplicate"})
    await api.set_today("2026-04-15")
    assert (await _run(client, "auto-dna"))["closed"] == 0
    assert (await _get(client, rejected["id"]))["closed_by"] == "provider"


async def test_auto_dna_is_idempotent(client: AsyncClient, api: Api) -> None:
    """domain.md §6: a second run changes nothing."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    referral = await create_referral(client)
    await api.set_today("2026-04-01")
    assert (await _run(client, "auto-dna"))["closed"] == 1
    assert (await _run(client, "auto-dna"))["closed"] == 0
    assert len(await _history(client, referral["id"])) == 2


async def test_auto_end_jfs_after_30_days(client: AsyncClient, api: Api) -> None:
    """JFS 5.08: JFS ends by itself 30 calendar days after the start, with code 45."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    referral = await create_referral(client)
    await act(client, referral["id"], "accept")
    await act(client, referral["id"], "start", {"start_date": "2026-03-02"})
    await api.set_today("2026-04-01")
    assert (await _run(client, "auto-end", "2026-03-31"))["ended"] == 0
    assert (await _run(client, "auto-end"))["ended"] == 1
    current = await _get(client, referral["id"])
    assert current["status"] == "ended"
    assert current["end_code"] == 45
    assert current["end_date"] == "2026-04-01"
    assert current["closed_by"] == "system"
    assert (await _history(client, referral["id"]))[-1]["type"] == "auto_ended"
    assert (await _run(client, "auto-end"))["ended"] == 0


async def test_auto_end_cwp_after_30_weeks(client: AsyncClient, api: Api) -> None:
    """HTW 75: Community Work Placements last 30 weeks (210 days), then code 45."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="CWP")
    referral = await create_referral(client, programme="CWP")
    await act(client, referral["id"], "accept")
    await act(client, referral["id"], "start", {"start_date": "2026-03-02"})
    await api.set_today("2026-09-28")  # 2 March + 210 days
    assert (await _run(client, "auto-end", "2026-09-27"))["ended"] == 0
    assert (await _run(client, "auto-end"))["ended"] == 1
    assert (await _get(client, referral["id"]))["end_date"] == "2026-09-28"


async def test_backed_out_start_is_not_auto_ended(client: AsyncClient, api: Api) -> None:
    """SES 3.15: a backed-out start no longer counts towards the allotted time."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    referral = await create_referral(client)
    await act(client, referral["id"], "accept")
    await act(client, referral["id"], "start", {"start_date": "2026-03-02"})
    await act(client, referral["id"], "back-out", {"reason": "error"}, headers=POST)
    await api.set_today("2026-04-15")
    assert (await _run(client, "auto-end"))["ended"] == 0
    # ...and auto DNA closes it at 30 days if the provider never cancelled (domain.md §4).
    assert (await _run(client, "auto-dna"))["closed"] == 1


async def test_as_of_may_not_be_after_today(client: AsyncClient, api: Api) -> None:
    await api.set_today("2026-03-02")
    response = await client.post(
        "/v1/jobs/auto-dna/runs", headers=ADMIN, json={"as_of": "2026-03-03"}
    )
    assert_problem(response, 422, "date-out-of-range")
    for headers in (JCP, POST, PROVIDER_A):
        response = await client.post("/v1/jobs/auto-end/runs", headers=headers, json={})
        assert_problem(response, 403, "forbidden")


async def test_runs_are_recorded_and_listed(client: AsyncClient, api: Api) -> None:
    await api.set_today("2026-03-02")
    await _run(client, "auto-dna")
    await _run(client, "auto-end")
    runs = (await client.get("/v1/jobs/runs", headers=ADMIN)).json()["items"]
    assert [(r["job"], r["trigger"], r["as_of"]) for r in runs] == [
        ("auto-end", "api", "2026-03-02"),
        ("auto-dna", "api", "2026-03-02"),
    ]
    assert all(r["duration_ms"] >= 0 for r in runs)
    assert_problem(await client.get("/v1/jobs/runs", headers=POST), 403, "forbidden")


async def test_batches_cover_every_due_referral(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    """Keyset batches: a run with a tiny batch size closes everything, each once."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    ids = [(await create_referral(client, nino=n))["id"] for n in NINOS]
    await api.set_today("2026-04-02")
    clock = Clock.at(
        __import__("datetime").datetime(2026, 4, 2, 10, tzinfo=__import__("datetime").UTC)
    )
    result = await run_job(
        app.state.sessions,
        Job.auto_dna,
        clock=clock,
        as_of=clock.today,
        trigger=Trigger.cli,
        batch_size=4,
    )
    assert result.changed == len(NINOS)
    assert result.batches == 2
    for rid in ids:
        assert [e["type"] for e in await _history(client, rid)] == [
            "created",
            "auto_did_not_attend",
        ]


async def test_concurrent_runs_close_each_referral_once(client: AsyncClient, api: Api) -> None:
    """domain.md §6: several instances running at once close each referral once, one event."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    ids = [(await create_referral(client, nino=n))["id"] for n in NINOS]
    await api.set_today("2026-04-02")
    results = await asyncio.gather(*(_run(client, "auto-dna") for _ in range(4)))
    assert sum(r["closed"] for r in results) == len(NINOS)
    for rid in ids:
        events = await _history(client, rid)
        assert [e["type"] for e in events] == ["created", "auto_did_not_attend"]


async def test_two_servers_on_one_database(
    settings: Settings, api: Api, client: AsyncClient
) -> None:
    """Two app instances (as two replicas would be) racing on one database."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    ids = [(await create_referral(client, nino=n))["id"] for n in NINOS]
    await api.set_today("2026-04-02")
    other = create_app(settings)
    async with AsyncClient(transport=ASGITransport(app=other), base_url="http://b") as second:
        results = await asyncio.gather(
            _run(client, "auto-dna"), _run(second, "auto-dna"), _run(client, "auto-dna")
        )
    await other.state.engine.dispose()
    assert sum(r["closed"] for r in results) == len(NINOS)
    for rid in ids:
        assert len(await _history(client, rid)) == 2


async def test_scheduler_runs_each_job_once_a_day(
    app: FastAPI, settings: Settings, api: Api, client: AsyncClient
) -> None:
    """The in-server scheduler (PRAP_SCHEDULER=1) runs every job (retention included, JFS
    1.33); a second tick the same day does nothing."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    await create_referral(client)
    await api.set_today("2026-04-02")
    first = await run_daily_jobs(app.state.sessions, settings)
    assert sorted((str(r.job), r.changed) for r in first) == [
        ("auto-dna", 1),
        ("auto-end", 0),
        ("retention", 0),
    ]
    assert await run_daily_jobs(app.state.sessions, settings) == []
    runs = (await client.get("/v1/jobs/runs", headers=ADMIN)).json()["items"]
    assert {r["trigger"] for r in runs} == {"scheduler"}


def test_next_run_is_after_midnight_uk() -> None:
    # 23:00 UTC on 1 June is 00:00 BST on 2 June: the run is at 00:10, ten minutes later.
    assert seconds_until_next_run(datetime(2026, 6, 1, 23, 0, tzinfo=UTC)) == 600
    # 00:30 UK: next run tomorrow at 00:10.
    assert seconds_until_next_run(datetime(2026, 1, 5, 0, 30, tzinfo=UTC)) == 23 * 3600 + 40 * 60


def test_cli_runs_a_job(settings: Settings) -> None:
    """`prap jobs run auto-dna --as-of` for cron or a Kubernetes CronJob."""
    env = os.environ | {
        "PRAP_DATABASE_URL": settings.database_url,
        "PRAP_SANDBOX": "1",
        "PRAP_JWT_SECRET": "x",
    }
    output = subprocess.run(
        [sys.executable, "-m", "app.cli", "jobs", "run", "auto-dna", "--as-of", "2026-01-05"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    assert result["job"] == "auto-dna"
    assert result["as_of"] == "2026-01-05"
    assert result["changed"] == 0


async def test_scheduler_forgets_expired_idempotency_keys(
    app: FastAPI, settings: Settings, api: Api, client: AsyncClient
) -> None:
    """api-contract.md Writes: keys live 24 hours; stored answers are not kept longer."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    keyed = {**JCP, "Idempotency-Key": "demo-key"}
    assert (
        await client.post("/v1/referrals", headers=keyed, json=referral_body())
    ).status_code == 201
    async with app.state.engine.begin() as connection:
        await connection.execute(
            text("UPDATE idempotency_records SET expires_at = :past"),
            {"past": datetime(2000, 1, 1, tzinfo=UTC)},
        )
    await run_daily_jobs(app.state.sessions, settings)
    async with app.state.engine.connect() as connection:
        left = await connection.scalar(text("SELECT count(*) FROM idempotency_records"))
    assert left == 0


async def test_schedulers_of_several_replicas_do_the_work_once(
    settings: Settings, api: Api, client: AsyncClient, is_postgres: bool
) -> None:
    """Every replica runs a scheduler: each referral is closed once, and on PostgreSQL the
    advisory lock lets one replica do the day's run."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    rid = (await create_referral(client))["id"]
    await api.set_today("2026-04-02")
    replicas = [create_app(settings) for _ in range(3)]
    try:
        await asyncio.gather(*(run_daily_jobs(r.state.sessions, settings) for r in replicas))
    finally:
        for replica in replicas:
            await replica.state.engine.dispose()
    assert [e["type"] for e in await _history(client, rid)] == ["created", "auto_did_not_attend"]
    runs = (await client.get("/v1/jobs/runs", headers=ADMIN)).json()["items"]
    if is_postgres:
        assert sorted(r["job"] for r in runs) == ["auto-dna", "auto-end", "retention"]


async def test_the_jobs_read_only_what_is_due_through_their_indexes(
    app: FastAPI, is_postgres: bool
) -> None:
    """The jobs' queries can be served by the partial deadline indexes, so a run costs what
    is due, not the size of the table: PostgreSQL's EXPLAIN uses them; SQLite accepts them
    as INDEXED BY (it refuses an index that cannot answer the query)."""
    where = {
        "ix_referrals_auto_dna_due": "status IN ('referred', 'acknowledged', 'accepted')"
        " AND auto_dna_on <= '2026-04-01' ORDER BY auto_dna_on, id",
        "ix_referrals_auto_end_due": "status = 'started' AND auto_end_on <= '2026-04-01'"
        " ORDER BY auto_end_on, id",
    }
    async with app.state.engine.connect() as connection:
        for index, condition in where.items():
            if is_postgres:
                # On a near-empty table the planner's pick among usable indexes turns on the
                # statistics earlier tests leave behind (once it took the status index and a
                # sort). What matters is that the partial index *can* serve the job's query:
                # so, in a transaction rolled back, the other droppable indexes go and
                # sequential scans are off; an index whose predicate did not match the query
                # would still not be chosen.
                async with connection.begin() as transaction:
                    others = await connection.scalars(
                        text(
                            "SELECT indexrelid::regclass::text FROM pg_index i"
                            " WHERE indrelid = 'referrals'::regclass"
                            " AND indexrelid::regclass::text <> :index"
                            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
                            " WHERE c.conindid = i.indexrelid)"
                        ),
                        {"index": index},
                    )
                    for other in list(others):
                        await connection.execute(text(f'DROP INDEX "{other}"'))
                    await connection.execute(text("SET LOCAL enable_seqscan = off"))
                    rows = await connection.execute(
                        text(f"EXPLAIN SELECT id FROM referrals WHERE {condition}")
                    )
                    plan = "\n".join(str(row[0]) for row in rows)
                    await transaction.rollback()
                assert index in plan, plan
            else:
                await connection.execute(
                    text(f"SELECT id FROM referrals INDEXED BY {index} WHERE {condition}")
                )
