"""Run the real server (uvicorn, N workers) against the benchmark database, for load tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import httpx

from app.core.pagination import use_cursor_key
from app.core.settings import Settings

BENCH_SECRET = "bench-secret"
# The servers' own secret, from which they derive (among others) the key signing cursors.
BENCH_SERVER_SECRET = "bench-server-secret"
# The servers' NINO digest key, for benchmarks that seed referrals directly.
BENCH_NINO_DIGEST_KEY = "bench-nino-digest-key"


def server_env(
    database_url: str,
    secret: str = BENCH_SECRET,
    log_level: str = "WARNING",
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    return (
        os.environ
        | {
            "PRAP_DATABASE_URL": database_url,
            "PRAP_JWT_SECRET": secret,
            "PRAP_SECRET_KEY": BENCH_SERVER_SECRET,
            "PRAP_NINO_DIGEST_KEY": BENCH_NINO_DIGEST_KEY,
            "PRAP_IDEMPOTENCY_ENCRYPTION_KEY": "bench-idempotency-key",
            "PRAP_SANDBOX": "0",
            "PRAP_SCHEDULER": "0",
            "PRAP_WEBHOOKS": "0",
            "PRAP_LOG_LEVEL": log_level,
        }
        | (extra or {})
    )


def sign_cursors_as_servers() -> None:
    """Cursors are signed (api-contract.md, Pagination): a benchmark client that makes its
    own, to start a page anywhere, signs them with the key the servers derive."""
    key = Settings(secret_key=BENCH_SERVER_SECRET).derived_key("cursor")
    assert key is not None  # a secret is given
    use_cursor_key(key)


def start_server(
    database_url: str,
    port: int,
    workers: int,
    secret: str = BENCH_SECRET,
    *,
    app: str = "app.main:app",
    log_level: str = "WARNING",
    stdout: IO[bytes] | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """uvicorn serving ``app`` in its own process group (so that its workers can be found,
    measured and stopped together); the app's own logs at ``log_level`` go to ``stdout``."""
    command = [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(
        command,
        env=server_env(database_url, secret, log_level, extra_env),
        start_new_session=True,
        stdout=stdout,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(process)
    raise RuntimeError("the server did not become ready")


def process_group(leader: int) -> list[int]:
    """Every process in the server's group: uvicorn's supervisor and all its workers."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue  # gone meanwhile
            if int(fields[2]) == leader:
                members.append(int(entry))
    return members


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU the processes have used so far (/proc/<pid>/stat utime + stime)."""
    ticks = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop_server(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal the whole process group (uvicorn's supervisor and its workers)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by every live process of a process group: what
    the server costs, whatever else the machine is running."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, ...
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


@contextmanager
def running_server(
    database_url: str, port: int, workers: int, extra_env: dict[str, str] | None = None
) -> Iterator[str]:
    process = start_server(database_url, port, workers, extra_env=extra_env)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)
