"""The application factory: routers, middleware, problem handlers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from app.audit.router import router as audit_router
from app.claims.router import router as claims_router
from app.console.routing import install_console
from app.contracts.router import router as contracts_router
from app.core.auth import Principal, Role, require
from app.core.calendar import warm_calendar
from app.core.clock import Clock
from app.core.database import create_engine, create_session_factory
from app.core.deps import use_clock_reader
from app.core.docs import install_docs
from app.core.observability import configure_logging, metrics_response
from app.core.openapi import API_VERSION, build_openapi
from app.core.pagination import use_cursor_key
from app.core.pipeline import RequestPipeline
from app.core.problems import (
    PROBLEM_CONTENT_TYPE,
    FieldError,
    MethodNotAllowed,
    NotFound,
    ProblemError,
    ServiceUnavailable,
    ValidationProblem,
    problem_responses,
)
from app.core.settings import Settings, get_settings
from app.credits.router import router as credits_router
from app.events.router import router as events_router
from app.idempotency.gate import IdempotencyKeys
from app.idempotency.service import MAX_KEY_LENGTH
from app.jobs.router import router as jobs_router
from app.jobs.scheduler import scheduler_loop
from app.payments.router import router as payments_router
from app.privacy.router import router as privacy_router
from app.problems.router import router as problems_router
from app.programmes.router import router as programmes_router
from app.referrals.router import router as referrals_router
from app.referrals.states import EndCode
from app.sandbox.router import router as sandbox_router
from app.sandbox.service import read_clock
from app.webhooks.router import router as webhooks_router
from app.webhooks.router import sandbox_router as webhooks_sandbox_router
from app.webhooks.worker import worker_loop

logger = logging.getLogger("prap")

DESCRIPTION = """\
Provider Referrals and Payments: Jobcentre Plus refers jobseekers to contracted employment
providers; providers acknowledge, accept or reject each referral, record starts, non-starts
and ends, and claim payments; DWP checks the claims, pays, and deducts service credits.

**Authentication.** Every `/v1` call but the sandbox's needs `Authorization: Bearer <JWT>`
(audience `prap`) with `sub`, `role` (`jcp`, `provider`, `post`, `admin`), and for a provider
`provider_id` and `scope` (`referrals` for lifecycle actions, `claims` for claiming).

**Writes.** Send every `POST` with an `Idempotency-Key` and retry with the same key: the first
answer is replayed (`idempotent-replayed: true`) for 24 hours. Referrals and claims carry a
`version` and an `ETag`; send it back in `If-Match` and a stale write is 412, not lost.
Request bodies are JSON (`application/json`), at most 1 MiB.

**Reads.** Lists are pages of at most 100 (`limit`, `next_cursor`); `GET` on a referral or
claim honours `If-None-Match` (304), and every `GET` also answers `HEAD`.

**Errors.** Every error is an RFC 9457 problem (`application/problem+json`) with a
machine-readable `code`; each operation lists the codes it can answer, and the problem's
`type`, `/problems/{code}`, says what each means and what to do.

**References.** Rules cite DWP's provider guidance by paragraph: JFS is the Job Finding
Support provider guidance, SES the Specialist Employability Support guidance (chapter 3),
GEN DWP's generic provider guidance (chapter 2), HTW the Help to Work / Community Work
Placements guidance, FND the Flexible New Deal guidance (section 21).

**Versions.** `info.version` is semantic and changes with every change to this document; see
the changelog. A deprecated operation or field is marked `deprecated` at least six months
before it is removed, and is removed only in a new major version.
"""


def problem_response(error: ProblemError) -> JSONResponse:
    return JSONResponse(
        error.to_problem().model_dump(exclude_none=True),
        status_code=error.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=error.headers or None,
    )


async def _on_problem(request: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)
    return problem_response(error)


def _field_of(location: tuple[Any, ...]) -> str:
    parts = [str(p) for p in location]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    body_problem: str | None = getattr(request.state, "body_problem", None)
    if body_problem is not None:
        invalid = FieldError(field="body", message=body_problem)
        return problem_response(ValidationProblem(errors=[invalid]))
    errors: list[FieldError] = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            errors.append(FieldError(field="body", message="The body is not valid JSON."))
            continue
        # The message only: pydantic's "input" would echo what was sent (personal data).
        errors.append(FieldError(field=_field_of(tuple(item.get("loc", ()))), message=item["msg"]))
    return problem_response(ValidationProblem(errors=errors))


MethodTable = list[tuple[re.Pattern[str], set[str]]]


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method of the resource, from the documented paths (each template compiled as
    Starlette compiles it); else what Starlette said."""
    app = request.app
    table: list[tuple[re.Pattern[str], set[str]]] | None = getattr(
        app.state, "methods_by_path", None
    )
    if table is None:
        table = [
            (compile_path(template)[0], {method.upper() for method in item})
            for template, item in app.openapi()["paths"].items()
        ]
        app.state.methods_by_path = table
    methods = set().union(*(m for regex, m in table if regex.match(request.url.path)))
    return ", ".join(sorted(methods)) or fallback


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return problem_response(NotFound())
    if error.status_code == 405:
        # RFC 9110 §15.5.6: a 405 lists every method the resource has. Starlette's own
        # ``Allow`` names only the first route that matched the path.
        allow = _allowed_methods(request, (error.headers or {}).get("Allow", ""))
        return problem_response(MethodNotAllowed(headers={"Allow": allow}))
    generic = ProblemError(str(error.detail) if error.detail else None)
    generic.status = error.status_code
    return problem_response(generic)


async def _on_unexpected(request: Request, error: Exception) -> Response:
    logger.exception("unexpected error", exc_info=error)
    return problem_response(ProblemError())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = create_engine(settings)
    sessions = create_session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        warm_calendar()
        if missing := settings.missing_keys():
            raise RuntimeError(
                f"Missing keys: set {', '.join(missing)} (or PRAP_SANDBOX=1 for development)."
            )
        scheduler = (
            asyncio.create_task(scheduler_loop(sessions, settings), name="prap-scheduler")
            if settings.scheduler
            else None
        )
        webhooks = (
            asyncio.create_task(worker_loop(sessions, settings), name="prap-webhooks")
            if settings.webhooks
            else None
        )
        # What start-up built (routes, models and their validators, compiled statements, the
        # calendar) lives as long as the process: keep it out of the collector's full passes,
        # which otherwise walk all of it and stall every request in flight for about 100 ms
        # (issue 13: the load benchmark's p99). Only objects made from now on are collected.
        gc.freeze()
        yield
        for task in (scheduler, webhooks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await engine.dispose()

    app = FastAPI(
        title="PRaP: Provider Referrals and Payments",
        version=API_VERSION,
        summary="Referrals, outcomes, claims and service credits for contracted employment "
        "provision.",
        description=DESCRIPTION,
        lifespan=lifespan,
        servers=[{"url": "/", "description": "This service"}],
        contact={
            "name": "DWP, Provider Referrals and Payments",
            "url": "https://www.gov.uk/government/organisations/department-for-work-pensions",
        },
        license_info={
            "name": "Open Government Licence v3.0",
            "identifier": "OGL-UK-3.0",
        },
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    if (cursor_key := settings.derived_key("cursor")) is not None:
        use_cursor_key(cursor_key)
    app.state.engine = engine
    app.state.sessions = sessions

    # What core needs of features, registered here (core imports no feature).
    async def clock_reader(session: AsyncSession) -> Clock:
        return await read_clock(session, sandbox=settings.sandbox)

    use_clock_reader(app, clock_reader)
    idempotency = IdempotencyKeys(sessions, settings, read_clock=clock_reader)

    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

    # One pipeline: request id, boundary, one verification of the token, the transaction
    # with its Idempotency-Key, the headers every answer carries and the access line.
    app.add_middleware(
        RequestPipeline, sessions=sessions, settings=settings, idempotency=idempotency
    )

    @app.get("/healthz", tags=["health"], operation_id="getLiveness")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        operation_id="getReadiness",
        responses=problem_responses(ServiceUnavailable),
    )
    async def readyz() -> Response:
        """Readiness: the database answers."""
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:
            logger.warning("readiness check failed")
            return problem_response(ServiceUnavailable())
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    async def metrics(_admin: Annotated[Principal, Depends(require(Role.admin))]) -> Response:
        """Prometheus metrics, for admin tokens only (api-contract.md, Running it)."""
        return metrics_response()

    # In the order of api-contract.md's tables, so the document reads the same way.
    for router in (
        referrals_router,
        privacy_router,
        events_router,
        claims_router,
        payments_router,
        programmes_router,
        contracts_router,
        credits_router,
        jobs_router,
        audit_router,
        webhooks_router,
        sandbox_router,
        webhooks_sandbox_router,
        problems_router,
    ):
        app.include_router(router)
    install_docs(app)
    install_console(app)  # the web console under /console, outside the OpenAPI document

    app.openapi = lambda: build_openapi(  # type: ignore[method-assign]
        app, idempotency_key_max_length=MAX_KEY_LENGTH, named_int_enums=(EndCode,)
    )
    return app


app = create_app()
