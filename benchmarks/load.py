"""Load benchmark: the API, the API without its read audit, and the baseline, in one run.

What is compared (issues 12 and 13), each served by uvicorn with 2 workers against one fresh
PostgreSQL database migrated by the project's migrations, with production settings (no
sandbox, no scheduler, no webhook worker, request logs at INFO as JSON):

- ``api``: the API itself (``app.main:app``);
- ``api-no-audit``: the same API with ``app.audit.service.record_read`` a no-op
  (``benchmarks.apps``), so that api against api-no-audit is the read audit's cost; the run
  stops if that server writes a read row during its warm-up;
- ``baseline``: the same duties per request with only Starlette and asyncpg
  (``benchmarks.baseline``; its docstring lists them), so that api against baseline is the
  framework's cost;
- ``api-before`` (with ``--before REV``): the API as it was at commit ``REV``
  (``benchmarks.before``), so that a change's effect is read from the same run.

Each client repeats create (jcp) → acknowledge → accept → start → end (provider) → get,
with no ``Idempotency-Key``. At each number of clients (16 and 32 by default) the servers
run one after the other (``--rounds`` repeats them, each round starting with the next
server, and pools the rounds). After a 3-second warm-up, over ``--seconds``: throughput,
p50/p99 latency, read audit rows written per request, and **CPU ms per transition**: user +
system CPU of all the server's processes (supervisor and workers, from /proc/<pid>/stat),
and separately of the PostgreSQL backends serving the benchmark database, divided by the
transitions answered (create and the four actions; the get's cost is included). The report
is a table per operation, a table per server, then ``key: value`` lines ending with
``cpu_ratio_<clients>`` (api / baseline), ``read_audit_cpu_ratio_<clients>`` (api /
api-no-audit), the read audit's CPU ms per transition on each side and its throughput ratio,
and ``against_before_cpu_ratio_<clients>`` (api / api-before).

    .venv/bin/python -m benchmarks.load --seconds 20 --clients 16 --rounds 3
    .venv/bin/python -m benchmarks.load --servers api --outbox   # every provider subscribed
    .venv/bin/python -m benchmarks.load --profile /tmp/prof      # py-spy the workers too
    .venv/bin/python -m benchmarks.load --before HEAD~5          # and the API five commits ago

``PRAP_BENCH_DATABASE_URL`` names the database (it is dropped and rebuilt; default
``prap_bench``); ``--port`` the servers' port. ``--outbox`` subscribes every provider to
every event, so each event also queues one delivery (nothing is sent). ``--pgbench`` also
replays one transition's SQL with pgbench, the database's own ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.auth import Role, mint_token
from app.webhooks.signing import new_secret
from benchmarks.common import bench_url, fresh_database
from benchmarks.server import (
    BENCH_SECRET,
    cpu_seconds,
    process_group,
    start_server,
    stop_server,
)

PROVIDERS = [f"P{n}" for n in range(8)]
TRANSITIONS = ("create", "acknowledge", "accept", "start", "end")
# HMRC: the first letter is not D F I Q U V, the second not D F I O Q U V, and these
# prefixes are never allocated. Every allocatable prefix, once: distinct n, distinct NINO.
_LETTERS = "ABCEGHJKLMNPRSTWXYZ"
_UNALLOCATED = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_PREFIXES = [f + s for s in _LETTERS for f in _LETTERS if f + s not in _UNALLOCATED]


def nino(n: int) -> str:
    """A valid NINO for each n, distinct for n below about 1.4 billion."""
    digits, n = n % 1_000_000, n // 1_000_000
    suffix, n = "ABCD"[n % 4], n // 4
    return f"{_PREFIXES[n % len(_PREFIXES)]}{digits:06d}{suffix}"


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
    first_nino: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> None:
    """One client repeating the loop create → acknowledge → accept → start → end → get."""
    provider = PROVIDERS[user % len(PROVIDERS)]
    jcp = bearer(Role.jcp, f"coach-{user}")
    staff = bearer(Role.provider, f"adviser-{user}", provider)
    today = datetime.now(UTC).date().isoformat()
    counter = first_nino + user * 1_000_000
    async with httpx.AsyncClient(base_url=base, timeout=30, transport=transport) as client:

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
                "INSERT INTO referrals (id, programme, provider_id, contract_id, status,"
                " nino_digest, referral_date, acknowledgement_due, auto_dna_on, re_referral, mappa,"
                " participant, markers, details, created_at, updated_at, version)"
                " SELECT lpad(to_hex(g), 26, '0'), 'JFS', 'P0', 'LOAD-P0', 'ended',"
                " md5(g::text) || md5(g::text), CURRENT_DATE, CURRENT_DATE, CURRENT_DATE,"
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
    base: str, users: int, seconds: float, first_nino: int
) -> tuple[dict[str, list[float]], dict[str, int], float]:
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    started = time.monotonic()
    stop_at = started + seconds
    await asyncio.gather(
        *(virtual_user(base, u, stop_at, latencies, errors, first_nino) for u in range(users))
    )
    return latencies, errors, time.monotonic() - started


SERVERS = {
    "api": "app.main:app",
    # The API with record_read a no-op (benchmarks/apps.py): the read audit's cost (issue 12).
    "api-no-audit": "benchmarks.apps:api_without_read_audit",
    "baseline": "benchmarks.baseline:app",
    # The API at an earlier commit (--before REV, benchmarks/before.py): a change's effect.
    "api-before": "benchmarks.before:app",
}
# Servers that must write no read audit row: checked after the warm-up, before measuring.
WITHOUT_READ_AUDIT = {"api-no-audit"}


@dataclass
class Phase:
    """One server under one number of clients: what it did and what it cost."""

    server: str
    users: int
    seconds: float
    latencies: dict[str, list[float]]
    errors: dict[str, int]
    cpu_s: float
    log_lines: int
    load_average: float
    read_rows: int
    database_cpu_s: float

    @property
    def key(self) -> str:
        return f"{self.server.replace('-', '_')}_{self.users}"

    @property
    def transitions(self) -> int:
        return sum(len(self.latencies[op]) for op in TRANSITIONS) - sum(
            n for key, n in self.errors.items() if key.split()[0] in TRANSITIONS
        )

    @property
    def every(self) -> list[float]:
        return [v for values in self.latencies.values() for v in values]

    @property
    def cpu_ms_per_transition(self) -> float:
        return self.cpu_s * 1000 / max(self.transitions, 1)

    @property
    def database_cpu_ms_per_transition(self) -> float:
        return self.database_cpu_s * 1000 / max(self.transitions, 1)

    @property
    def read_rows_per_request(self) -> float:
        return self.read_rows / max(len(self.every), 1)


def backend_cpu_seconds(database: str) -> dict[int, float]:
    """CPU so far of each PostgreSQL backend serving ``database`` (its process title names
    the database: ``postgres: 15/main: prap <database> 127.0.0.1(...)``): the work the
    server's statements and commits cost on the database side."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                title = cmdline.read().split()
            if title[:1] != [b"postgres:"] or database.encode() not in title:
                continue
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rpartition(")")[2].split()
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        found[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    return found


async def count_read_rows(url: str) -> int:
    """Rows in the read audit so far (referral_reads)."""
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        rows = int(await connection.scalar(text("SELECT count(*) FROM referral_reads")) or 0)
    await engine.dispose()
    return rows


def run_phase(
    url: str, server: str, users: int, seconds: int, port: int, workers: int, first_nino: int,
    profile: Path | None, log_level: str = "INFO", extra_env: dict[str, str] | None = None,
) -> Phase:  # fmt: skip
    """Start ``server`` with INFO request logs (as in production), warm it up, then measure
    the CPU of all its processes (workers included), and of the database's backends serving
    it, over ``seconds`` of load."""
    database = urlparse(url).path.lstrip("/")
    with tempfile.TemporaryFile() as log:
        process = start_server(
            url, port, workers, app=SERVERS[server], log_level=log_level, stdout=log,
            extra_env=extra_env,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            reads_before_warm_up = asyncio.run(count_read_rows(url))
            asyncio.run(drive(base, users, WARM_UP_SECONDS, first_nino))
            reads_before = asyncio.run(count_read_rows(url))
            if server in WITHOUT_READ_AUDIT and reads_before != reads_before_warm_up:
                # The no-op no longer stands in for what writes reads: the figure would lie.
                raise RuntimeError(f"{server} wrote read audit rows during the warm-up")
            pids = process_group(process.pid)
            spies = [] if profile is None else spy(pids, profile / f"{server}-{users}", seconds)
            load_average = os.getloadavg()[0]
            cpu_before = cpu_seconds(pids)
            backends_before = backend_cpu_seconds(database)
            latencies, errors, elapsed = asyncio.run(
                drive(base, users, seconds, first_nino + 500_000)
            )
            cpu = cpu_seconds(pids) - cpu_before
            # A backend that started in the window counts whole; one that ended is lost
            # (the servers' pools keep theirs open, so that is rare).
            database_cpu = sum(
                seconds - backends_before.get(pid, 0.0)
                for pid, seconds in backend_cpu_seconds(database).items()
            )
            for spy_process in spies:
                spy_process.wait()
        finally:
            stop_server(process)
        read_rows = asyncio.run(count_read_rows(url)) - reads_before
        log.seek(0)
        lines = sum(1 for line in log if b'"request"' in line)
    return Phase(
        server, users, elapsed, latencies, errors, cpu, lines, load_average, read_rows,
        database_cpu,
    )  # fmt: skip


# raw: collapsed stacks (the flamegraph input; benchmarks.profile_summary sums them up).
PROFILE_FORMAT = "raw"
PROFILE_SUFFIX = {"raw": "txt", "speedscope": "speedscope.json", "flamegraph": "svg"}


def spy(pids: list[int], prefix: Path, seconds: int) -> list[subprocess.Popen[bytes]]:
    """py-spy on every worker (not the supervisor) for the measured window."""
    py_spy = Path(sys.executable).with_name("py-spy")
    workers = [p for p in pids if p != min(pids)]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(seconds),
                "--rate",
                "200",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                f"{prefix}-{pid}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]


def pooled(rounds: list[Phase]) -> Phase:
    """One server's rounds as one phase: time, CPU, transitions and rows summed, latencies
    pooled; the load average is the highest any round met."""
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for phase in rounds:
        for op, values in phase.latencies.items():
            latencies[op].extend(values)
        for key, n in phase.errors.items():
            errors[key] += n
    return Phase(
        rounds[0].server,
        rounds[0].users,
        sum(p.seconds for p in rounds),
        latencies,
        errors,
        sum(p.cpu_s for p in rounds),
        sum(p.log_lines for p in rounds),
        max(p.load_average for p in rounds),
        sum(p.read_rows for p in rounds),
        sum(p.database_cpu_s for p in rounds),
    )


def report(measured: list[Phase]) -> None:
    """Per operation, then per server (a table, and ``key: value`` lines), then the ratios;
    a server measured in several rounds is reported pooled, with each round's CPU figure."""
    by_server: dict[tuple[str, int], list[Phase]] = defaultdict(list)
    for phase in measured:
        by_server[phase.server, phase.users].append(phase)
    phases = [pooled(rounds) for rounds in by_server.values()]
    print(
        f"{'server':<12} {'clients':>7} {'operation':<12} {'count':>7} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for phase in phases:
        for op, values in sorted(phase.latencies.items()):
            print(
                f"{phase.server:<12} {phase.users:>7} {op:<12} {len(values):>7}"
                f" {percentile(values, 50) * 1000:>8.1f} {percentile(values, 99) * 1000:>8.1f}"
            )
        if phase.errors:
            print(f"{phase.server} {phase.users} errors:", dict(phase.errors))
    print()
    print(
        f"{'server':<12} {'clients':>7} {'cpu ms/transition':>17} {'db cpu ms':>9}"
        f" {'transitions/s':>13} {'p50 ms':>8} {'p99 ms':>8} {'reads/request':>13} {'load 1m':>7}"
    )
    for phase in phases:
        every = phase.every
        print(
            f"{phase.server:<12} {phase.users:>7} {phase.cpu_ms_per_transition:>17.3f}"
            f" {phase.database_cpu_ms_per_transition:>9.3f}"
            f" {phase.transitions / phase.seconds:>13.1f}"
            f" {percentile(every, 50) * 1000:>8.1f} {percentile(every, 99) * 1000:>8.1f}"
            f" {phase.read_rows_per_request:>13.2f} {phase.load_average:>7.2f}"
        )
    print()
    for phase in phases:
        key = phase.key
        every = phase.every
        print(f"{key}_load_average_1m: {phase.load_average:.2f}")
        print(f"{key}_request_log_lines: {phase.log_lines}")
        print(f"{key}_read_rows_per_request: {phase.read_rows_per_request:.2f}")
        print(f"{key}_requests_per_s: {len(every) / phase.seconds:.1f}")
        print(f"{key}_transitions_per_s: {phase.transitions / phase.seconds:.1f}")
        print(f"{key}_p50_ms: {percentile(every, 50) * 1000:.1f}")
        print(f"{key}_p99_ms: {percentile(every, 99) * 1000:.1f}")
        print(f"{key}_server_cpu_s: {phase.cpu_s:.2f}")
        print(f"{key}_database_cpu_ms_per_transition: {phase.database_cpu_ms_per_transition:.3f}")
        print(f"{key}_cpu_ms_per_transition: {phase.cpu_ms_per_transition:.3f}")
        if len(rounds := by_server[phase.server, phase.users]) > 1:
            each = " ".join(f"{p.cpu_ms_per_transition:.3f}" for p in rounds)
            print(f"{key}_cpu_ms_per_transition_by_round: {each}")
    for users in sorted({p.users for p in phases}):
        by_server = {p.server: p for p in phases if p.users == users}
        api = by_server.get("api")
        for other, name in (
            ("baseline", "cpu_ratio"),
            ("api-no-audit", "read_audit_cpu_ratio"),
            ("api-before", "against_before_cpu_ratio"),
        ):
            if api is not None and other in by_server:
                ratio = api.cpu_ms_per_transition / by_server[other].cpu_ms_per_transition
                print(f"{name}_{users}: {ratio:.2f}")
        if api is not None and "api-no-audit" in by_server:
            without = by_server["api-no-audit"]
            cost = api.cpu_ms_per_transition - without.cpu_ms_per_transition
            print(f"read_audit_cpu_ms_per_transition_{users}: {cost:.3f}")
            cost = api.database_cpu_ms_per_transition - without.database_cpu_ms_per_transition
            print(f"read_audit_database_cpu_ms_per_transition_{users}: {cost:.3f}")
            print(
                f"read_audit_throughput_ratio_{users}:"
                f" {api.transitions / api.seconds / (without.transitions / without.seconds):.2f}"
            )


WARM_UP_SECONDS = 3


async def subscribe_providers(url: str, receiver_url: str) -> None:
    """One webhook subscription to every event per provider, so each event the API records
    also writes a pending delivery (the outbox); nothing is sent (no worker runs). Set up
    directly: the URL rules are tested elsewhere."""
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


def export_tree(revision: str) -> str:
    """The project's tree at ``revision``, exported to a new temporary folder (``git archive``)
    for the server ``api-before``."""
    tree = tempfile.mkdtemp(prefix="prap-before-")
    root = Path(__file__).resolve().parents[1]
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
    return tree


def main(
    seconds: int, clients: list[int], port: int, workers: int, pgbench: bool,
    profile: Path | None, servers: list[str], log_level: str, outbox: bool = False,
    rounds: int = 1, before: str | None = None,
) -> None:  # fmt: skip
    url = bench_url()
    extra_env: dict[str, dict[str, str]] = {}
    if before is not None:
        tree = export_tree(before)
        atexit.register(shutil.rmtree, tree, ignore_errors=True)
        extra_env["api-before"] = {"PRAP_BENCH_BEFORE_TREE": tree}
        servers = [*servers, "api-before"]
    fresh_database(url)
    asyncio.run(seed_contracts(url))
    if outbox:
        asyncio.run(subscribe_providers(url, "https://crm.example.org/never-sent"))
    random.seed(1)
    phases = []
    first_nino = 0
    # Each client count runs the servers back to back, so that they meet much the same load
    # from whatever else shares the machine; each further round starts with the next server,
    # so that none is always first (or always last) after the others.
    for users in clients:
        for turn in range(rounds):
            for server in servers[turn % len(servers) :] + servers[: turn % len(servers)]:
                phases.append(
                    run_phase(
                        url,
                        server,
                        users,
                        seconds,
                        port,
                        workers,
                        first_nino,
                        profile,
                        log_level,
                        extra_env.get(server),
                    )
                )
                # Each phase its own NINOs: a million a client, and the measured window from
                # half a million on (see virtual_user and run_phase).
                first_nino += (max(clients) + 1) * 1_000_000
    report(phases)
    if pgbench:
        asyncio.run(seed_pgbench_rows(url))
        tps = run_pgbench(url, max(clients), seconds)
        print(f"pgbench_tps: {tps:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=20, help="measured window per phase")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[16, 32], help="concurrent clients, per phase"
    )
    parser.add_argument("--port", type=int, default=8800, help="where each server listens")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--pgbench", action="store_true", help="also pgbench one transition")
    parser.add_argument(
        "--outbox", action="store_true", help="subscribe every provider: each event queues one"
    )
    parser.add_argument("--profile", type=Path, help="py-spy the servers into this folder")
    parser.add_argument(
        "--servers",
        nargs="+",
        choices=[name for name in SERVERS if name != "api-before"],
        default=[name for name in SERVERS if name != "api-before"],
        help="which servers, in this order (default: all three)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each server this many times, interleaved, and pool the rounds",
    )
    parser.add_argument(
        "--log-level", default="INFO", help="the servers' log level (INFO: a line a request)"
    )
    parser.add_argument(
        "--before",
        metavar="REV",
        help="also serve the API as it was at this commit (api-before), in the same run",
    )
    arguments = parser.parse_args()
    main(
        arguments.seconds,
        arguments.clients,
        arguments.port,
        arguments.workers,
        arguments.pgbench,
        arguments.profile,
        arguments.servers,
        arguments.log_level,
        arguments.outbox,
        arguments.rounds,
        arguments.before,
    )
