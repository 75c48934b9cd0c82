"""Run the real server (uvicorn, N workers) against the benchmark database, for load tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

BENCH_SECRET = "bench-secret"


def server_env(
    database_url: str, secret: str = BENCH_SECRET, extra: dict[str, str] | None = None
) -> dict[str, str]:
    return (
        os.environ
        | {
            "PRAP_DATABASE_URL": database_url,
            "PRAP_JWT_SECRET": secret,
            "PRAP_SANDBOX": "0",
            "PRAP_SCHEDULER": "0",
            "PRAP_WEBHOOKS": "0",
            "PRAP_LOG_LEVEL": "WARNING",
        }
        | (extra or {})
    )


def start_server(
    database_url: str,
    port: int,
    workers: int,
    secret: str = BENCH_SECRET,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "uvicorn", "app.main:app",
        "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=server_env(database_url, secret, extra_env), start_new_session=True
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
