"""Benchmark a contract's live service-credit report (domain.md §9; JFS 6.07-6.10, 7.44)
against the plain SQL that counts the same thing.

Seeds N referrals (default 1,000,000) for ONE JFS contract, spread over the twelve months of
2025, straight into PostgreSQL, with CSS deadlines, meeting dates, recording days and
statuses varied by month so that the RAGs vary (green, amber and red in both standards);
times ``app.credits.service.contract_report`` for 2025-01..2025-12; times the bare SQL
aggregate (the same per-month counts as one plain statement); checks both give the same
counts; and prints, as its last lines, ``rows``, ``report_seconds``, ``raw_sql_seconds``,
``ratio`` and ``peak_rss_mb``. Timings are medians of warm runs: the report's over the
``--repeat`` runs after the first five (asyncpg prepares statements, and PostgreSQL then
switches to a generic plan: the steady state of a server's pooled connections); the first
five (custom plans) are printed as ``report_custom_plan_seconds``.

    PRAP_BENCH_DATABASE_URL=postgresql+asyncpg://prap:prap@127.0.0.1:5432/prap_bench_h4 \
        .venv/bin/python -m benchmarks.service_credits --rows 1000000

Uses PRAP_BENCH_DATABASE_URL (default: the local cluster's ``prap_bench`` database).
Everything in that database is dropped first. ``--explain`` prints EXPLAIN ANALYZE of the
service's statement (custom and generic plan) and of the plain one; ``--scattered`` seeds
the heap out of referral-date order.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.contracts.models import Contract
from app.core.clock import Clock
from app.core.database import create_session_factory
from app.credits import service
from benchmarks.common import bench_url, fresh_database, peak_rss_mb, vacuum

CONTRACT = "BENCH-CSS"
FIRST, LAST = "2025-01", "2025-12"
# Mid-February 2026: every 2025 cohort deadline has passed, so every month is final.
NOW = datetime(2026, 2, 16, 10, 0, tzinfo=UTC)

# Per cohort month (January first), how many in a thousand miss each standard's deadline.
# CSS 1 (green >= 95%, amber >= 85%) and CSS 2 (green >= 95%, amber >= 90%; auto DNA, about
# 4% of the non-rejected, never meets it) so the months run through every RAG.
# PostgreSQL's plan cache: custom plans for the first five executions of a prepared statement.
CUSTOM_PLAN_RUNS = 5

CSS1_LATE = (10, 40, 100, 200, 30, 60, 120, 180, 20, 90, 160, 250)
CSS2_LATE = (0, 20, 60, 150, 5, 80, 200, 10, 40, 120, 0, 300)

SEED = f"""
WITH s AS (
    SELECT g,
           make_date(2025, 1 + g % 12, 1 + (g / 12) % 28) AS d,
           1 + g % 12 AS m,
           abs(hashint4(g)) % 1000 AS h,
           (abs(hashint4extended(g, 1)) % 1000)::int AS k1,
           (abs(hashint4extended(g, 2)) % 1000)::int AS k2
    FROM generate_series(1, CAST(:rows AS int)) AS g
), f AS (
    SELECT s.*,
           -- kind: rejected, auto DNA (nothing recorded), DNS with a meeting date,
           -- DNA recorded by the provider, started.
           CASE WHEN h < 30 THEN 'rejected' WHEN h < 70 THEN 'auto_dna'
                WHEN h < 110 THEN 'dns' WHEN h < 150 THEN 'dna' ELSE 'started' END AS kind,
           k1 < (ARRAY{list(CSS1_LATE)})[m] AS late1,
           k2 < (ARRAY{list(CSS2_LATE)})[m] AS late2
    FROM s
)
INSERT INTO referrals (id, programme, provider_id, contract_id, status, nino_digest, referral_date,
    acknowledgement_due, auto_dna_on, auto_end_on, start_date, initial_meeting_due,
    outcome_recorded_due, outcome_recorded_on, initial_meeting_date, cancellation_reason,
    rejection_reason, closed_by, re_referral, mappa, participant, markers, details,
    created_at, updated_at, version)
SELECT lpad(to_hex(g), 26, '0'), 'JFS', 'P0', '{CONTRACT}',
       CASE kind WHEN 'rejected' THEN 'rejected' WHEN 'started' THEN 'ended'
                 ELSE 'cancelled' END,
       md5(g::text) || md5(g::text),
       d, d + 1, d + 30,
       CASE WHEN kind = 'started' THEN d + 30 + CASE WHEN late1 THEN 13 ELSE k1 % 12 END END,
       CASE WHEN kind = 'started' THEN d + CASE WHEN late1 THEN 13 ELSE k1 % 12 END END,
       -- Calendar-day stand-ins for the 8th and 10th working days after the referral date.
       d + 12, d + 14,
       CASE WHEN kind IN ('dns', 'dna', 'started')
            THEN d + CASE WHEN late2 THEN 15 + k2 % 5 ELSE k2 % 15 END END,
       CASE WHEN kind IN ('dns', 'started')
            THEN d + CASE WHEN late1 THEN 13 ELSE k1 % 12 END END,
       CASE kind WHEN 'auto_dna' THEN 'did_not_attend' WHEN 'dna' THEN 'did_not_attend'
                 WHEN 'dns' THEN 'did_not_start' END,
       CASE WHEN kind = 'rejected' THEN 'duplicate' END,
       CASE WHEN kind = 'auto_dna' THEN 'system' ELSE 'provider' END,
       false, false,
       '{{"forename": "A", "surname": "B"}}'::json, '{{}}'::json, '{{}}'::json,
       now(), now(), 1
FROM f
"""
# The order the service would have created them in: by referral date. ``--scattered``
# leaves the heap in generate_series order instead (months interleaved, the worst case for
# an index scan).
CHRONOLOGICAL = "ORDER BY d, g"

RAW = f"""
SELECT to_char(referral_date, 'YYYY-MM') AS month,
       count(*) FILTER (WHERE initial_meeting_date IS NOT NULL
                          AND initial_meeting_due IS NOT NULL) AS css1_eligible,
       count(*) FILTER (WHERE initial_meeting_date <= initial_meeting_due) AS css1_met,
       count(*) FILTER (WHERE status <> 'rejected'
                          AND outcome_recorded_due IS NOT NULL) AS css2_eligible,
       count(*) FILTER (WHERE status <> 'rejected'
                          AND outcome_recorded_on <= outcome_recorded_due) AS css2_met
FROM referrals
WHERE contract_id = '{CONTRACT}'
  AND referral_date >= DATE '2025-01-01' AND referral_date <= DATE '2025-12-31'
GROUP BY 1
ORDER BY 1
"""


async def seed(engine: AsyncEngine, rows: int, scattered: bool) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO contracts (id, provider_id, programme, start_date, end_date,"
                f" monthly_service_fee_pence, created_at) VALUES ('{CONTRACT}', 'P0', 'JFS',"
                " DATE '2020-01-01', DATE '2030-12-31', 2500000, now())"
            )
        )
        # Not needed here (every seeded referral is closed), and it would only slow the seed.
        await connection.execute(text("DROP INDEX uq_referrals_open_participation"))
        order = "" if scattered else CHRONOLOGICAL
        await connection.execute(text(SEED + order), {"rows": rows})


async def time_report(engine: AsyncEngine) -> tuple[float, Any]:
    sessions = create_session_factory(engine)
    clock = Clock.at(NOW)
    async with sessions() as session:
        contract = await session.get(Contract, CONTRACT)
        assert contract is not None
        started = time.perf_counter()
        report = await service.contract_report(session, clock, contract, FIRST, LAST)
        seconds = time.perf_counter() - started
    return seconds, report


async def time_raw(engine: AsyncEngine) -> tuple[float, list[Any]]:
    async with engine.connect() as connection:
        started = time.perf_counter()
        rows = (await connection.execute(text(RAW))).all()
        seconds = time.perf_counter() - started
    return seconds, list(rows)


async def explain(engine: AsyncEngine) -> None:
    """EXPLAIN ANALYZE of the service's aggregate (the statement ``contract_report`` sends,
    captured with its parameters) and of the plain statement."""
    captured: list[tuple[str, Any]] = []

    def before(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "css1_eligible" in statement:
            captured.append((statement, params))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        await time_report(engine)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)
    statement, params = captured[0]
    async with engine.connect() as connection:
        for name, sql, args, mode in (
            ("service, custom plan", statement, params, "force_custom_plan"),
            ("service, generic plan", statement, params, "force_generic_plan"),
            ("raw", RAW, (), "auto"),
        ):
            print(f"--- EXPLAIN ANALYZE ({name}) ---")
            print(sql.strip())
            print("parameters:", args)
            await connection.exec_driver_sql(f"SET plan_cache_mode = {mode}")
            plan = await connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, args)
            for (line,) in plan:
                print(line)
        await connection.exec_driver_sql("RESET plan_cache_mode")


async def main(rows: int, repeat: int, show_plans: bool, scattered: bool) -> None:
    engine = create_async_engine(bench_url(), pool_size=4)
    started = time.perf_counter()
    await seed(engine, rows, scattered)
    await vacuum(engine, "referrals", "contracts")
    print(f"seeded {rows} referrals in {time.perf_counter() - started:.1f}s")

    # asyncpg prepares every statement and caches it per connection; PostgreSQL plans the
    # first CUSTOM_PLAN_RUNS executions of a prepared statement with its parameter values,
    # then may switch to one generic plan. A server's pooled connections live in the
    # second phase, so that is what ``report_seconds`` measures (the median of ``repeat``
    # runs after the first CUSTOM_PLAN_RUNS); the first phase is printed alongside.
    await time_raw(engine)  # warm the cache and open the connection
    report_times: list[float] = []
    raw_times: list[float] = []
    report = raw = None
    for _ in range(CUSTOM_PLAN_RUNS + repeat):
        seconds, report = await time_report(engine)
        report_times.append(seconds)
        seconds, raw = await time_raw(engine)
        raw_times.append(seconds)
    assert report is not None
    assert raw is not None

    by_month = {row.month: row for row in raw}
    assert [m.month for m in report.months] == sorted(by_month)
    for month in report.months:
        row = by_month[month.month]
        got = (month.css1.eligible, month.css1.met, month.css2.eligible, month.css2.met)
        want = (row.css1_eligible, row.css1_met, row.css2_eligible, row.css2_met)
        assert got == want, (month.month, got, want)
        assert month.final is True
    for month in report.months:
        print(
            f"{month.month}: css1 {month.css1.percent} {month.css1.rag}"
            f" css2 {month.css2.percent} {month.css2.rag}"
            f" deduction {month.deduction_percent}% = {month.deduction_pence}p"
            f" threshold={month.termination_threshold} right={month.termination_right}"
        )
    print(f"total_deduction_pence {report.total_deduction_pence}")
    print("report runs:", " ".join(f"{s:.3f}" for s in report_times))
    print("raw runs:   ", " ".join(f"{s:.3f}" for s in raw_times))

    if show_plans:
        await explain(engine)
    await engine.dispose()

    custom_seconds = statistics.median(report_times[:CUSTOM_PLAN_RUNS])
    report_seconds = statistics.median(report_times[CUSTOM_PLAN_RUNS:])
    raw_seconds = statistics.median(raw_times)
    print(f"report_custom_plan_seconds: {custom_seconds:.3f}")
    print(f"custom_plan_ratio: {custom_seconds / raw_seconds:.3f}")
    print(f"rows: {rows}")
    print(f"report_seconds: {report_seconds:.3f}")
    print(f"raw_sql_seconds: {raw_seconds:.3f}")
    print(f"ratio: {report_seconds / raw_seconds:.3f}")
    print(f"peak_rss_mb: {peak_rss_mb():.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--explain", action="store_true")
    parser.add_argument("--scattered", action="store_true")
    arguments = parser.parse_args()
    fresh_database(bench_url())
    asyncio.run(main(arguments.rows, arguments.repeat, arguments.explain, arguments.scattered))
