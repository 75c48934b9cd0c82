"""Load benchmark: the API under a realistic mix, against PostgreSQL's own ceiling.

Starts uvicorn with 2 workers on a fresh PostgreSQL database, then runs U virtual users for
S seconds, each repeating: create a referral (jcp), acknowledge, accept, start, end
(provider), get it, list a page. Prints throughput and p50/p99 latency per operation. In the
same run, pgbench replays the SQL of one transition (lock the row, update it, append its
event, commit) to give the database's ceiling, and the last lines are ``key: value``:
``api_transitions_per_s``, ``pgbench_tps``, ``ratio`` (the first over the second), and the
latency figures.

    scripts/bench-db && .venv/bin/python -m benchmarks.load --seconds 30 --users 16

The outbox's cost: ``--webhooks outbox`` subscribes every provider (so each event also
writes a pending delivery, nothing is sent); ``--webhooks deliver`` points the
subscriptions at a receiver on 127.0.0.1 and runs the server's own delivery worker
(sandbox mode, for the loopback receiver: compare it with ``--sandbox``, whose clock read
costs a query per request). ``--skip-pgbench`` leaves out the ceiling run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from urllib.parse import urlparse

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.auth import Role, mint_token
from app.webhooks.signing import new_secret
from benchmarks.common import bench_url, fresh_database
from benchmarks.receiver import running_receiver
from benchmarks.server import BENCH_SECRET, group_cpu_seconds, start_server, stop_server

PROVIDERS = [f"P{n}" for n in range(8)]
TRANSITIONS = ("create", "acknowledge", "accept", "start", "end")
_FIRST = "ABCEGHJKLMNPRSTWXYZ"
_SECOND = "ABCEGHJKLMNPRSTWXYZ"


def nino(n: int) -> str:
    """A valid, distinct NINO for each n (HMRC format; no unallocated prefixes)."""
    digits, n = n % 1_000_000, n // 1_000_000
    suffix, n = "ABCD"[n % 4], n // 4
    first, second = _FIRST[n % len(_FIRST)], _SECOND[(n // len(_FIRST)) % len(_SECOND)]
    if first + second in {"GB", "NT", "TN", "ZZ"}:
        first = "A"
    return f"{first}{second}{digits:06d}{suffix}"


def bearer(role: Role, sub: str, provider_id: str | None = None) -> dict[str, str]:
    token = mint_token(
        sub=sub, role=role, key=BENCH_SECRET, provider_id=provider_id, scopes=("referrals",)
    )
    return {"Authorization": f"Bearer {token}"}


async def seed_contracts(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        for provider in PROVIDERS:
            await connection.execute(
                text(
                    "INSERT INTO contracts (id, provider_id, programme, start_date, end_date,"
                    " monthly_service_fee_pence, created_at) VALUES (:id, :p, 'JFS',"
                    " DATE '2020-01-01', DATE '2035-12-31', 100000, now())"
                ),
                {"id": f"LOAD-{provider}", "p": provider},
            )
    await engine.dispose()


async def virtual_user(
    base: str,
    user: int,
    stop_at: float,
    latencies: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    provider = PROVIDERS[user % len(PROVIDERS)]
    jcp = bearer(Role.jcp, f"coach-{user}")
    staff = bearer(Role.provider, f"adviser-{user}", provider)
    today = datetime.now(UTC).date().isoformat()
    counter = user * 1_000_000
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def call(
            op: str, method: str, path: str, headers: dict[str, str], **kw: object
        ) -> httpx.Response:
            started = time.perf_counter()
            response = await client.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]
            latencies[op].append(time.perf_counter() - started)
            if response.status_code >= 400:
                errors[f"{op} {response.status_code}"] += 1
            return response

        while time.monotonic() < stop_at:
            counter += 1
            body = {
                "programme": "JFS",
                "provider_id": provider,
                "participant": {"forename": "Load", "surname": "Test", "nino": nino(counter)},
            }
            created = await call("create", "POST", "/v1/referrals", jcp, json=body)
            if created.status_code != 201:
                continue
            rid = created.json()["id"]
            for op, payload in (
                ("acknowledge", {}),
                ("accept", {}),
                ("start", {"start_date": today}),
                ("end", {"end_code": 1, "end_date": today, "last_engagement_date": today}),
            ):
                await call(op, "POST", f"/v1/referrals/{rid}/{op}", staff, json=payload)
            await call("get", "GET", f"/v1/referrals/{rid}", staff)
            await call("list", "GET", "/v1/referrals", staff, params={"limit": 20})


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


PGBENCH_SCRIPT = """
\\set n random(1, :rows)
BEGIN;
SELECT version FROM referrals WHERE id = lpad(to_hex(:n), 26, '0') FOR UPDATE;
UPDATE referrals SET status = 'acknowledged', acknowledged_at = now(), updated_at = now(),
    version = version + 1 WHERE id = lpad(to_hex(:n), 26, '0');
INSERT INTO referral_events (txid, referral_id, provider_id, type, occurred_at, actor_sub,
    actor_role, actor_provider_id, referral_version, status, data)
VALUES (pg_current_xact_id()::text::bigint, lpad(to_hex(:n), 26, '0'), 'P0', 'acknowledged',
    now(), 'bench', 'provider', 'P0', 2, 'acknowledged', '{}');
COMMIT;
"""

PGBENCH_ROWS = 200_000


async def seed_pgbench_rows(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO referrals (id, programme, provider_id, contract_id, status, nino,"
                " referral_date, acknowledgement_due, auto_dna_on, re_referral, mappa,"
                " participant, markers, details, created_at, updated_at, version)"
                " SELECT lpad(to_hex(g), 26, '0'), 'JFS', 'P0', 'LOAD-P0', 'ended',"
                " 'ZZ' || lpad(g::text, 7, '0'), CURRENT_DATE, CURRENT_DATE, CURRENT_DATE,"
                " false, false, '{}'::json, '{}'::json, '{}'::json, now(), now(), 1"
                " FROM generate_series(1, :rows) AS g"
            ),
            {"rows": PGBENCH_ROWS},
        )
        await connection.execute(text("ANALYZE referrals"))
    await engine.dispose()


def run_pgbench(url: str, clients: int, seconds: int) -> float:
    parsed = urlparse(url.replace("postgresql+asyncpg", "postgresql"))
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    env = os.environ | {"PGPASSWORD": parsed.password or ""}
    output = subprocess.run(
        [
            "pgbench",
            "-n",
            "-h",
            parsed.hostname or "127.0.0.1",
            "-p",
            str(parsed.port or 5432),
            "-U",
            parsed.username or "prap",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-D",
            f"rows={PGBENCH_ROWS}",
            "-f",
            script.name,
            (parsed.path or "/prap_bench")[1:],
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)
    match = re.search(r"tps = ([0-9.]+)", output)
    if match is None:
        raise RuntimeError(output)
    return float(match.group(1))


async def drive(
    base: str, users: int, seconds: int
) -> tuple[dict[str, list[float]], dict[str, int], float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(*(virtual_user(base, u, stop_at, latencies, errors) for u in range(users)))
    return latencies, errors, time.monotonic() - started


async def subscribe_providers(url: str, receiver_url: str) -> None:
    """One subscription to every event per provider (set up directly: the URL rules are
    tested elsewhere, and the worker checks them again at delivery)."""
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        for provider in PROVIDERS:
            await connection.execute(
                text(
                    "INSERT INTO webhook_subscriptions (id, provider_id, url, event_types,"
                    " secret, created_by, created_at) VALUES (:id, :p, :url, NULL,"
                    " :secret, 'bench', now())"
                ),
                {"id": f"LOAD-{provider}", "p": provider, "url": receiver_url,
                 "secret": new_secret()},
            )  # fmt: skip
    await engine.dispose()


async def delivery_counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT status, count(*) AS n FROM webhook_deliveries GROUP BY status")
        )
        counts = {row.status: int(row.n) for row in rows}
    await engine.dispose()
    return counts


def main(
    seconds: int,
    users: int,
    port: int,
    workers: int,
    *,
    webhooks: str = "off",
    sandbox: bool = False,
    skip_pgbench: bool = False,
) -> None:
    url = bench_url()
    fresh_database(url)
    asyncio.run(seed_contracts(url))
    random.seed(1)
    env = {"PRAP_SANDBOX": "1" if sandbox or webhooks == "deliver" else "0"}
    with contextlib.ExitStack() as stack:
        if webhooks == "outbox":
            asyncio.run(subscribe_providers(url, "https://crm.example.org/never-sent"))
        if webhooks == "deliver":
            receiver_url = stack.enter_context(running_receiver(port + 100))
            asyncio.run(subscribe_providers(url, receiver_url))
            env["PRAP_WEBHOOKS"] = "1"
        server = start_server(url, port, workers, extra_env=env)
        try:
            cpu_before = group_cpu_seconds(server.pid)
            base = f"http://127.0.0.1:{port}"
            latencies, errors, elapsed = asyncio.run(drive(base, users, seconds))
            if webhooks == "deliver":
                time.sleep(3)  # let the workers finish what is in flight
            server_cpu = group_cpu_seconds(server.pid) - cpu_before
        finally:
            stop_server(server)
    deliveries = asyncio.run(delivery_counts(url))
    tps = 0.0
    if not skip_pgbench:
        asyncio.run(seed_pgbench_rows(url))
        tps = run_pgbench(url, users, seconds)

    every = [v for values in latencies.values() for v in values]
    transitions = sum(len(latencies[op]) for op in TRANSITIONS)
    print(f"{'operation':<12} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for op, values in sorted(latencies.items()):
        print(
            f"{op:<12} {len(values):>7} {percentile(values, 50) * 1000:>8.1f}"
            f" {percentile(values, 99) * 1000:>8.1f}"
        )
    if errors:
        print("errors:", dict(errors))
    api_tps = transitions / elapsed
    print(f"users: {users}")
    print(f"workers: {workers}")
    print(f"seconds: {elapsed:.1f}")
    print(f"requests_per_s: {len(every) / elapsed:.1f}")
    print(f"p50_ms: {percentile(every, 50) * 1000:.1f}")
    print(f"p99_ms: {percentile(every, 99) * 1000:.1f}")
    print(f"mean_ms: {statistics.fmean(every) * 1000:.1f}")
    print(f"webhooks: {webhooks}")
    print(f"deliveries: {deliveries}")
    print(f"api_transitions_per_s: {api_tps:.1f}")
    # The server's own CPU per request: comparable between runs on a busy machine.
    print(f"server_cpu_ms_per_request: {server_cpu / len(every) * 1000:.2f}")
    if tps:
        print(f"pgbench_tps: {tps:.1f}")
        print(f"ratio: {api_tps / tps:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--webhooks", choices=("off", "outbox", "deliver"), default="off")
    parser.add_argument("--sandbox", action="store_true")
    parser.add_argument("--skip-pgbench", action="store_true")
    arguments = parser.parse_args()
    main(
        arguments.seconds,
        arguments.users,
        arguments.port,
        arguments.workers,
        webhooks=arguments.webhooks,
        sandbox=arguments.sandbox,
        skip_pgbench=arguments.skip_pgbench,
    )
