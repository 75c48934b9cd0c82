"""A CPU-time profile of the hot path, in one process, for the API and the baseline.

py-spy samples wall-clock stacks: on a loaded machine a runnable process waiting for a core
is sampled wherever it was preempted (mostly socket writes), which overstates the driver
and the network code. This runs each app in-process (httpx's ASGITransport, no uvicorn),
one client doing the load loop against PostgreSQL, under ``cProfile`` with a CPU-time
timer, and prints the process CPU per transition (driver included, the same driver for
both) and the API's costliest functions by own and by cumulative CPU time.

    .venv/bin/python -m benchmarks.profile_cpu api --seconds 20
    PROFILE_KEEP_DB=1 .venv/bin/python -m benchmarks.profile_cpu baseline --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import AsyncExitStack
from typing import Any

import httpx

from benchmarks.common import bench_url, fresh_database
from benchmarks.load import TRANSITIONS, seed_contracts, virtual_user
from benchmarks.server import BENCH_SECRET


async def app_under_test(name: str, url: str, stack: AsyncExitStack) -> Any:
    """The ASGI app with its lifespan entered: the API with production settings (INFO
    request logs), or the baseline."""
    os.environ |= {
        "PRAP_DATABASE_URL": url,
        "PRAP_JWT_SECRET": BENCH_SECRET,
        "PRAP_SECRET_KEY": "bench-server-secret",
        "PRAP_NINO_DIGEST_KEY": "bench-nino-digest-key",
        "PRAP_IDEMPOTENCY_ENCRYPTION_KEY": "bench-idempotency-key",
    }
    if name == "api":
        from app.core.settings import Settings
        from app.main import create_app

        # As benchmarks.server runs it: no scheduler, no webhook worker polling in-process.
        settings = Settings(database_url=url, jwt_secret=BENCH_SECRET, sandbox=False,
                            scheduler=False, webhooks=False, log_level="INFO")  # fmt: skip
        app = create_app(settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        return app
    from benchmarks import baseline

    await stack.enter_async_context(baseline.lifespan(baseline.app.app))  # type: ignore[attr-defined]
    return baseline.app


FIRST_NINO = {"api": 0, "baseline": 50_000_000}


async def profile(name: str, seconds: int, top: int) -> None:
    url = bench_url()
    async with AsyncExitStack() as stack:
        app = await app_under_test(name, url, stack)
        log = stack.enter_context(tempfile.TemporaryFile("w"))  # noqa: SIM115
        for handler in (
            *logging.getLogger().handlers,
            *logging.getLogger("baseline.access").handlers,
        ):
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log)  # the request log is written, as in production
        transport = httpx.ASGITransport(app=app)
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        # Warm up: statement caches, the token cache, the programme catalogue.
        first = FIRST_NINO[name]
        await virtual_user("http://bench", 0, time.monotonic() + 2, latencies, errors, first,
                           transport)  # fmt: skip
        latencies.clear()
        profiler = cProfile.Profile(time.process_time)
        started = time.process_time()
        profiler.enable()
        await virtual_user("http://bench", 1, time.monotonic() + seconds, latencies, errors,
                           first + 5_000_000, transport)  # fmt: skip
        profiler.disable()
        cpu = time.process_time() - started
    if os.environ.get("PROFILE_DUMP"):
        profiler.dump_stats(os.environ["PROFILE_DUMP"])  # for pstats: callers, callees
    transitions = sum(len(latencies[op]) for op in TRANSITIONS)
    print(f"{name}_transitions: {transitions}")
    print(f"{name}_errors: {dict(errors)}")
    print(f"{name}_process_cpu_ms_per_transition_profiled: {cpu * 1000 / transitions:.3f}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(f"--- {name}: top {top} by {order} ---")
        print(out.getvalue().split("\n", 7)[-1])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("server", nargs="?", choices=("api", "baseline"), default="api")
    arguments = parser.parse_args()
    if arguments.server == "api" and not os.environ.get("PROFILE_KEEP_DB"):
        fresh_database(bench_url())
        asyncio.run(seed_contracts(bench_url()))
    sys.stdout.flush()
    asyncio.run(profile(arguments.server, arguments.seconds, arguments.top))
