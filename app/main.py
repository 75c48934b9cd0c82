"""The application factory: routers, middleware, problem handlers, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.claims.router import router as claims_router
from app.console.routing import install_console
from app.contracts.router import router as contracts_router
from app.core.boundary import BoundaryMiddleware
from app.core.calendar import warm_calendar
from app.core.database import create_engine, create_session_factory
from app.core.observability import RequestContextMiddleware, configure_logging, metrics_endpoint
from app.core.openapi import build_openapi
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
from app.core.unit_of_work import UnitOfWorkMiddleware
from app.credits.router import router as credits_router
from app.events.router import router as events_router
from app.jobs.router import router as jobs_router
from app.jobs.scheduler import scheduler_loop
from app.payments.router import router as payments_router
from app.programmes.router import router as programmes_router
from app.referrals.router import router as referrals_router
from app.sandbox.router import router as sandbox_router

logger = logging.getLogger("prap")

DESCRIPTION = """\
Provider Referrals and Payments: Jobcentre Plus refers jobseekers to contracted employment
providers; providers acknowledge, accept or reject each referral, record starts, non-starts
and ends, and claim payments; DWP checks the claims, pays, and deducts service credits.

Every error is an RFC 9457 problem (`application/problem+json`) with a machine-readable `code`.
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
    if getattr(request.state, "invalid_json", False):
        invalid = FieldError(field="body", message="The body is not valid JSON.")
        return problem_response(ValidationProblem(errors=[invalid]))
    errors: list[FieldError] = []
    for item in error.errors():
        if item.get("type") == "json_invalid":
            errors.append(FieldError(field="body", message="The body is not valid JSON."))
            continue
        # The message only: pydantic's "input" would echo what was sent (personal data).
        errors.append(FieldError(field=_field_of(tuple(item.get("loc", ()))), message=item["msg"]))
    return problem_response(ValidationProblem(errors=errors))


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return problem_response(NotFound())
    if error.status_code == 405:
        return problem_response(MethodNotAllowed())
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
        if settings.jwt_verification_key is None:
            raise RuntimeError(
                "No token key: set PRAP_JWT_SECRET or PRAP_JWT_PUBLIC_KEY (or PRAP_SANDBOX=1)."
            )
        scheduler = (
            asyncio.create_task(scheduler_loop(sessions, settings), name="prap-scheduler")
            if settings.scheduler
            else None
        )
        yield
        if scheduler is not None:
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
        await engine.dispose()

    app = FastAPI(
        title="PRaP: Provider Referrals and Payments",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions

    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)

    # Added last = outermost: request context, then the SCR boundary, then the transaction.
    app.add_middleware(UnitOfWorkMiddleware, sessions=sessions, settings=settings)
    app.add_middleware(BoundaryMiddleware)
    app.add_middleware(RequestContextMiddleware)

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

    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)

    # In the order of api-contract.md's tables, so the document reads the same way.
    for router in (
        referrals_router,
        events_router,
        claims_router,
        payments_router,
        programmes_router,
        contracts_router,
        credits_router,
        jobs_router,
        sandbox_router,
    ):
        app.include_router(router)
    install_console(app)  # the web console under /console, outside the OpenAPI document

    app.openapi = lambda: build_openapi(app)  # type: ignore[method-assign]
    return app


app = create_app()
