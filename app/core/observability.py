"""JSON logs with a request id, and Prometheus metrics.

Log lines carry method, route template, status and duration: never a request body, a query
string or a header value other than the request id (personal data never goes into logs).
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.responses import Response
from starlette.types import Scope

from app.core.asgi import header

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

REQUESTS = Counter(
    "prap_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
LATENCY = Histogram(
    "prap_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def configure_logging(level: str = "INFO") -> None:
    """Standard logging and structlog both write one JSON object per line to stdout."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log would print the query string; ours replaces it.
    logging.getLogger("uvicorn.access").handlers[:] = []
    logging.getLogger("uvicorn.access").propagate = False


access_log = structlog.get_logger("prap.access")


# api-contract.md, The boundary: every response is nosniff; every answer of the API (whose
# operations return personal data: referrals, histories, searches, claims, subject access)
# must never be stored by a cache, whatever it returned this time. The API's other answers
# are cheap to make again, so the whole of /v1 is simply never cached.
_SECURITY_HEADERS = ((b"x-content-type-options", b"nosniff"),)
_NO_STORE = (b"cache-control", b"no-store")
_NOT_STORED = ("/v1/", "/metrics", "/readyz", "/healthz")


def request_id_of(scope: Scope) -> str:
    """The request's id: ``X-Request-ID`` when sane, else a new one."""
    incoming = header(scope, b"x-request-id")
    return incoming if incoming and _REQUEST_ID.match(incoming) else uuid.uuid4().hex


def added_headers(path: str, request_id: str) -> list[tuple[bytes, bytes]]:
    """The headers every response gets: its request id, nosniff, and no-store on /v1."""
    added = [(b"x-request-id", request_id.encode()), *_SECURITY_HEADERS]
    if path.startswith(_NOT_STORED):
        added.append(_NO_STORE)
    return added


def record_request(scope: Scope, status: int, elapsed: float) -> None:
    """The access line and the metrics of one answered request."""
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    REQUESTS.labels(scope["method"], route, str(status)).inc()
    LATENCY.labels(scope["method"], route).observe(elapsed)
    access_log.info(
        "request",
        method=scope["method"],
        route=route,
        status=status,
        duration_ms=round(elapsed * 1000, 2),
    )


def metrics_response() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
