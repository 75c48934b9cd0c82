"""Webhook deliveries per second to a local receiver.

Seeds N events, each with a pending delivery to one subscription (set-based SQL, as the
outbox would hold them), then runs the delivery worker (``worker_loop``, the same code as
``PRAP_WEBHOOKS=1`` and ``prap worker``) in this process against PostgreSQL until every
delivery is delivered, to a receiver in another process on 127.0.0.1. Prints ``key: value``
lines: ``deliveries``, ``seconds``, ``deliveries_per_s``, ``concurrency``, and
``workers`` (several worker loops racing, each delivery still sent once).

    scripts/bench-db && .venv/bin/python -m benchmarks.webhooks --deliveries 5000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import time

from sqlalchemy import text

from app.core.database import create_engine, create_session_factory
from app.core.settings import Settings
from app.webhooks.signing import new_secret
from app.webhooks.worker import worker_loop
from benchmarks.common import bench_url, fresh_database, peak_rss_mb, vacuum
from benchmarks.receiver import running_receiver

SEED = """
WITH referrals_made AS (
    INSERT INTO referrals (id, programme, provider_id, contract_id, status, nino,
        referral_date, acknowledgement_due, auto_dna_on, re_referral, mappa,
        participant, markers, details, created_at, updated_at, version)
    SELECT lpad(to_hex(g), 26, '0'), 'JFS', 'P0', 'WH-P0', 'referred',
        'ZZ' || lpad(g::text, 7, '0'), CURRENT_DATE, CURRENT_DATE, CURRENT_DATE,
        false, false, '{}'::json, '{}'::json, '{}'::json, now(), now(), 1
    FROM generate_series(1, :n) AS g
    RETURNING id
), events AS (
    INSERT INTO referral_events (txid, referral_id, provider_id, type, occurred_at,
        actor_sub, actor_role, actor_provider_id, referral_version, status, data)
    SELECT 0, id, 'P0', 'created', now(), 'bench', 'jcp', NULL, 1, 'referred',
        '{"programme": "JFS"}'::json
    FROM referrals_made ORDER BY id
    RETURNING id, referral_id
)
INSERT INTO webhook_deliveries (subscription_id, event_id, referral_id, event_type, status,
    attempts, created_at, next_attempt_at)
SELECT 'WH-SUB', id, referral_id, 'created', 'pending', 0, now() - interval '1 second',
    now() - interval '1 second'
FROM events ORDER BY id
"""


async def seed(settings: Settings, n: int, url: str) -> None:
    engine = create_engine(settings)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO contracts (id, provider_id, programme, start_date, end_date,"
                " monthly_service_fee_pence, created_at) VALUES ('WH-P0', 'P0', 'JFS',"
                " DATE '2020-01-01', DATE '2035-12-31', 100000, now())"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO webhook_subscriptions (id, provider_id, url, event_types, secret,"
                " created_by, created_at) VALUES ('WH-SUB', 'P0', :url, NULL, :secret,"
                " 'bench', now())"
            ),
            {"url": url, "secret": new_secret()},
        )
        await connection.execute(text(SEED), {"n": n})
    await vacuum(engine, "webhook_deliveries", "referral_events")
    await engine.dispose()


async def deliver_all(settings: Settings, n: int, workers: int) -> float:
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    started = time.perf_counter()
    loops = [asyncio.create_task(worker_loop(sessions, settings)) for _ in range(workers)]
    try:
        while True:
            async with engine.connect() as connection:
                delivered = await connection.scalar(
                    text("SELECT count(*) FROM webhook_deliveries WHERE status = 'delivered'")
                )
            if delivered == n:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        for loop in loops:
            loop.cancel()
        for loop in loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        await engine.dispose()
    return elapsed


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(n: int, concurrency: int, workers: int, port: int) -> None:
    url = bench_url()
    fresh_database(url)
    # Sandbox mode: the receiver is on loopback (every other rule is the same).
    settings = Settings(
        database_url=url, sandbox=True, webhook_concurrency=concurrency, jwt_secret="unused"
    )
    with running_receiver(port) as receiver_url:
        asyncio.run(seed(settings, n, receiver_url))
        cpu_before = _cpu_seconds()
        elapsed = asyncio.run(deliver_all(settings, n, workers))
        cpu = _cpu_seconds() - cpu_before
    print(f"deliveries: {n}")
    print(f"concurrency: {concurrency}")
    print(f"workers: {workers}")
    print(f"seconds: {elapsed:.2f}")
    print(f"deliveries_per_s: {n / elapsed:.1f}")
    # The worker's own CPU per delivery: what the figure above costs, whatever else runs.
    print(f"worker_cpu_ms_per_delivery: {cpu / n * 1000:.2f}")
    print(f"peak_rss_mb: {peak_rss_mb():.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=8901)
    arguments = parser.parse_args()
    main(arguments.deliveries, arguments.concurrency, arguments.workers, arguments.port)
