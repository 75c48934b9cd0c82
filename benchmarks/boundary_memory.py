"""What an unauthenticated attacker can make the server hold (issue "The boundary holds").

Starts the real server (uvicorn, one worker, on SQLite in a temporary directory) and reads the
worker's resident memory before and after each attack, sent 8 at a time:

- 100 MB uploads declared in ``Content-Length`` (refused before a byte is read);
- 100 MB chunked uploads (cut off at 1 MiB);
- 1 MiB bodies of ``[{},{},...]`` and ``[[],[],...]`` without a token (the costliest JSON
  for its size), and one that names the SCR flag, which must then be parsed before the 401;
- JSON nested 100,000 deep.

Run: ``.venv/bin/python -m benchmarks.boundary_memory``. The goal: every answer a 4xx, and the
worker grows by no more than a few MiB per request in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from app.cli import migrate_database
from app.core.settings import Settings
from benchmarks.server import start_server, stop_server

MIB = 1024 * 1024


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def worker_pid(supervisor: int) -> int:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return int(children[0]) if children else supervisor


async def chunks(total: int) -> AsyncIterator[bytes]:
    block = b" " * (64 * 1024)
    for _ in range(total // len(block)):
        yield block


async def attack(base: str, name: str, rounds: int, concurrency: int) -> Counter[int]:
    statuses: Counter[int] = Counter()
    big_dicts = b"[" + b"{}," * (MIB // 3 - 2) + b"{}]"
    big_lists = b"[" + b"[]," * (MIB // 3 - 2) + b"[]]"
    deep = b"[" * 100_000 + b"]" * 100_000
    # Naming the SCR flag forces the boundary to parse the body (as a skeleton) before 401.
    flagged = b'{"special_customer_record": false, "x": ' + big_lists[: MIB - 64] + b"[]]}"

    async def one(client: httpx.AsyncClient) -> None:
        try:
            if name == "declared-100MB":
                response = await client.post(
                    "/v1/referrals",
                    content=chunks(100 * MIB),
                    headers={"content-length": str(100 * MIB)},
                )
            elif name == "chunked-100MB":
                response = await client.post("/v1/referrals", content=chunks(100 * MIB))
            elif name == "1MiB-dicts":
                response = await client.post("/v1/referrals", content=big_dicts)
            elif name == "1MiB-lists":
                response = await client.post("/v1/claims", content=big_lists)
            elif name == "1MiB-flagged":
                response = await client.post("/v1/claims", content=flagged)
            else:
                response = await client.post("/v1/referrals", content=deep)
            statuses[response.status_code] += 1
        except httpx.HTTPError:
            statuses[0] += 1  # the server closed a connection it had refused

    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        for _ in range(rounds):
            await asyncio.gather(*(one(client) for _ in range(concurrency)))
    return statuses


def main(rounds: int, concurrency: int, port: int) -> None:
    directory = Path(tempfile.mkdtemp(prefix="prap-boundary-"))
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    migrate_database(Settings(database_url=url))
    server = start_server(url, port, 1)
    try:
        pid = worker_pid(server.pid)
        base = f"http://127.0.0.1:{port}"
        start = rss_mb(pid)
        print(f"worker RSS at start: {start:.1f} MB")
        for name in (
            "declared-100MB",
            "chunked-100MB",
            "1MiB-dicts",
            "1MiB-lists",
            "1MiB-flagged",
            "deep",
        ):
            before = rss_mb(pid)
            statuses = asyncio.run(attack(base, name, rounds, concurrency))
            after = rss_mb(pid)
            print(
                f"{name:15} {rounds * concurrency:4} requests, {concurrency} at a time: "
                f"answers {dict(statuses)}, RSS {before:.1f} -> {after:.1f} MB "
                f"({after - before:+.1f})"
            )
        print(f"worker RSS at end: {rss_mb(pid):.1f} MB ({rss_mb(pid) - start:+.1f} in all)")
    finally:
        stop_server(server)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=8391)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.concurrency, arguments.port)
