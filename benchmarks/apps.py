"""Benchmark-only variants of the API, to measure what one duty costs (issue 12).

``api_without_read_audit`` is the API exactly as ``app.main`` builds it, except that
``app.audit.service.record_read`` does nothing: no ``referral_reads`` row is written. Served
beside the API and the baseline by ``benchmarks.load`` (server ``api-no-audit``), the CPU
difference between the two API servers is the read audit's cost on the hot path. Never for
production: the read audit is a duty (domain.md §10, GEN 71).

The no-op is put in place *before* ``app.main`` is imported, so that every
``from app.audit.service import record_read`` binds it. Two guards keep the figure honest:
on import, at least one module must have bound the no-op and none may hold the real
function (a refactor that renamed or re-imported it would otherwise measure nothing); and
``benchmarks.load`` checks that no read row is written while this server runs.

    uvicorn benchmarks.apps:api_without_read_audit --workers 2
"""

from __future__ import annotations

import sys
from typing import Any

import app.audit.service as audit

if "app.main" in sys.modules:
    raise RuntimeError("app.main was imported before the read audit could be replaced")

recording = audit.record_read


async def record_no_read(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for ``record_read``: the response is answered, its read is not recorded."""


audit.record_read = record_no_read

from app.main import create_app  # noqa: E402  (after the no-op is in place, on purpose)


def _bindings(function: object) -> list[str]:
    return [
        name
        for name, module in list(sys.modules.items())
        if name.startswith("app.") and getattr(module, "record_read", None) is function
    ]


if still_real := _bindings(recording):
    raise RuntimeError(f"these modules still record reads: {', '.join(still_real)}")
if _bindings(record_no_read) == ["app.audit.service"]:
    raise RuntimeError("no module calls record_read any more: the no-op would measure nothing")

api_without_read_audit = create_app()
