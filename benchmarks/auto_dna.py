"""Benchmark the auto-DNA job (JFS 3.40) against the plain SQL that does the same work.

Seeds N referrals (default 1,000,000) straight into PostgreSQL, all due for auto DNA; times
the plain SQL statement that closes them all and writes their events in one go; restores
the same data; times the job (keyset batches, a commit per batch); and prints, as its last
lines, ``job_seconds``, ``raw_sql_seconds``, ``ratio`` and ``peak_rss_mb`` (this process's
peak resident memory: the job must not load referrals into Python).

    .venv/bin/python -m benchmarks.auto_dna --rows 1000000

Uses PRAP_BENCH_DATABASE_URL (default: the local cluster's ``prap_bench`` database, which
``scripts/bench-db`` creates). Everything in that database is dropped first.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.clock import Clock
from app.core.database import create_session_factory
from app.jobs.service import DEFAULT_BATCH_SIZE, Job, Trigger, run_job
from benchmarks.common import bench_url, fresh_database, peak_rss_mb, vacuum

AS_OF = date(2026, 4, 30)

SEED = """
INSERT INTO referrals (id, programme, provider_id, contract_id, status, nino_digest, referral_date,
    acknowledgement_due, auto_dna_on, re_referral, mappa, participant, markers, details,
    created_at, updated_at, version)
SELECT lpad(to_hex(g), 26, '0'),
       'JFS', 'P' || (g % 50), 'BENCH-C',
       (ARRAY['referred', 'acknowledged', 'accepted'])[1 + g % 3],
       md5(g::text) || md5(g::text),
       DATE '2026-03-01' + (g % 20),
       DATE '2026-03-03' + (g % 20),
       DATE '2026-03-31' + (g % 20),
       false, false,
       '{"forename": "A", "surname": "B"}'::json, '{}'::json, '{}'::json,
       now(), now(), 1
FROM generate_series(1, :rows) AS g
"""

RAW = """
WITH closed AS (
    UPDATE referrals
    SET status = 'cancelled', cancellation_reason = 'did_not_attend', closed_by = 'system',
        closed_at = :now, updated_at = :now, version = version + 1
    WHERE status IN ('referred', 'acknowledged', 'accepted') AND auto_dna_on <= :as_of
    RETURNING id, provider_id, version, auto_dna_on
)
INSERT INTO referral_events (txid, referral_id, provider_id, type, occurred_at, actor_sub,
                             actor_role, actor_provider_id, referral_version, status, data)
SELECT pg_current_xact_id()::text::bigint, id, provider_id, 'auto_did_not_attend', :now,
       'system', 'system', NULL, version, 'cancelled',
       CAST('{"reason": "did_not_attend"}' AS json)
FROM closed ORDER BY auto_dna_on, id
"""

RESTORE = """
UPDATE referrals SET status = (ARRAY['referred', 'acknowledged', 'accepted'])[
        1 + (('x' || right(id, 8))::bit(32)::int % 3)],
    cancellation_reason = NULL, closed_by = NULL, closed_at = NULL, version = 1
"""


async def seed(engine: AsyncEngine, rows: int) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO contracts (id, provider_id, programme, start_date, end_date,"
                " monthly_service_fee_pence, created_at) VALUES ('BENCH-C', 'P0', 'JFS',"
                " DATE '2020-01-01', DATE '2030-12-31', 0, now())"
            )
        )
        # Open referrals are unique per NINO and programme: spread them over distinct NINOs.
        await connection.execute(text("DROP INDEX uq_referrals_open_participation"))
        await connection.execute(text(SEED), {"rows": rows})


async def restore(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE referral_events"))
        await connection.execute(text(RESTORE))


async def main(rows: int, batch_size: int) -> None:
    engine = create_async_engine(bench_url(), pool_size=4)
    now = datetime(2026, 4, 30, 1, 0, tzinfo=UTC)
    started = time.perf_counter()
    await seed(engine, rows)
    await vacuum(engine, "referrals", "referral_events")
    print(f"seeded {rows} referrals in {time.perf_counter() - started:.1f}s")

    started = time.perf_counter()
    async with engine.begin() as connection:
        result = await connection.execute(text(RAW), {"now": now, "as_of": AS_OF})
    raw_seconds = time.perf_counter() - started
    print(f"raw SQL closed {result.rowcount} referrals")

    await restore(engine)
    await vacuum(engine, "referrals", "referral_events")

    sessions = create_session_factory(engine)
    started = time.perf_counter()
    run = await run_job(
        sessions,
        Job.auto_dna,
        clock=Clock.at(now),
        as_of=AS_OF,
        trigger=Trigger.cli,
        batch_size=batch_size,
    )
    job_seconds = time.perf_counter() - started
    print(f"job closed {run.changed} referrals in {run.batches} batches")
    assert run.changed == result.rowcount, "the job and the raw SQL must do the same work"
    await engine.dispose()

    print(f"rows: {rows}")
    print(f"job_seconds: {job_seconds:.3f}")
    print(f"raw_sql_seconds: {raw_seconds:.3f}")
    print(f"ratio: {job_seconds / raw_seconds:.3f}")
    print(f"peak_rss_mb: {peak_rss_mb():.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    arguments = parser.parse_args()
    fresh_database(bench_url())
    asyncio.run(main(arguments.rows, arguments.batch_size))
