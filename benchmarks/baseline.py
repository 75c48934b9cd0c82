"""The baseline: the API's per-request duties with nothing but Starlette and asyncpg.

What Python needs for the benchmark loop (create, acknowledge, accept, start, end, get),
to compare the API's server CPU with (issue 13). Per request, as the API does: verify the
JWT with python-jose (verified tokens remembered, expiry checked every time, as
``app.core.auth``), refuse an SCR body, authorise role, scope and tenancy, one transaction,
lock the row (``FOR UPDATE``), check the transition and its time rules with the project's
own pure rules, UPDATE conditional on the version, append the event with its transaction
id, answer the row as JSON with ``allowed_actions`` and an ``ETag``, and write one JSON
access log line at INFO. What it leaves out is framework: no ORM, no pydantic, no
dependency injection. The load mix sends no ``Idempotency-Key`` and no ``If-Match``, so
neither is handled here. Run by ``benchmarks.load``:

    PRAP_DATABASE_URL=postgresql://... PRAP_JWT_SECRET=... \
        uvicorn benchmarks.baseline:app --workers 2 --no-access-log
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import asyncpg
from jose import JWTError, jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.clock import Clock, real_now
from app.core.ids import new_id
from app.core.problems import ProblemError
from app.referrals import rules
from app.referrals.digests import nino_digest
from app.referrals.states import EndCode, ReferralAction
from app.referrals.transitions import (
    HTTP_ACTIONS,
    TRANSITIONS,
    action_possible,
    check_state,
    check_time_rules,
)

SECRET = os.environ.get("PRAP_JWT_SECRET", "")
# The API finds a participant's referrals by a keyed digest of the NINO (GEN 136): so does this.
NINO_DIGEST_KEY = os.environ.get("PRAP_NINO_DIGEST_KEY", "bench-nino-digest-key")
DSN = os.environ.get("PRAP_DATABASE_URL", "").replace("postgresql+asyncpg", "postgresql")
LOOP_ACTIONS = (A := ReferralAction).acknowledge, A.accept, A.start, A.end


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "event": record.getMessage(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "timestamp": real_now().isoformat(),
        }
        return json.dumps(line | getattr(record, "fields", {}))


handler = logging.StreamHandler(sys.stdout)
handler.setFormatter(JsonLines())
access_log = logging.getLogger("baseline.access")
access_log.addHandler(handler)
access_log.setLevel(logging.INFO)


class AccessLog:
    """Request id and one JSON line per request (method, route, status, duration)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, status, request_id = time.perf_counter(), 500, uuid.uuid4().hex

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = ROUTES.get(scope.get("endpoint"), "unmatched")  # type: ignore[arg-type]
            fields = {
                "request_id": request_id,
                "method": scope.get("method"),
                "route": route,
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            }
            access_log.info("request", extra={"fields": fields})


def as_json(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(type(value))


def answer(status: int, document: dict[str, Any], **headers: str) -> Response:
    body = json.dumps(document, default=as_json)
    return Response(body, status, headers=headers, media_type="application/json")


def problem(error: ProblemError) -> Response:
    document = {
        "type": "about:blank",
        "title": error.title,
        "status": error.status,
        "code": error.code,
        "detail": error.detail,
    }
    return Response(json.dumps(document), error.status, media_type="application/problem+json")


@lru_cache(maxsize=4096)
def _verify(token: str) -> dict[str, Any]:
    if jwt.get_unverified_header(token).get("alg") != "HS256":
        raise JWTError("algorithm")
    claims: dict[str, Any] = jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        audience="prap",
        options={"require_exp": True, "require_sub": True, "require_aud": True},
    )
    return claims


def caller(request: Request, role: str) -> dict[str, Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    try:
        claims = _verify(token.strip()) if scheme.lower() == "bearer" else None
    except JWTError:
        claims = None
    if claims is None or claims["exp"] <= time.time():
        raise Problem(401, "unauthenticated", "Unauthenticated")
    if claims.get("role") != role or (
        role == "provider" and "referrals" not in claims.get("scope", "").split()
    ):
        raise Problem(403, "forbidden", "Forbidden")
    return claims


class Problem(ProblemError):
    def __init__(self, status: int, code: str, title: str) -> None:
        self.status, self.code, self.title = status, code, title
        super().__init__(title)


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise Problem(422, "validation-error", "Invalid JSON body")
    if body.get("special_customer_record") is True:  # domain.md §2, before anything else
        raise Problem(422, "special-customer-record", "Special Customer Record")
    return body


def representation(row: asyncpg.Record, claims: dict[str, Any], clock: Clock) -> dict[str, Any]:
    facts = SimpleNamespace(**row)
    document = dict(row)
    document.pop("nino_digest")  # never shown, as in the API
    role, scopes = claims["role"], claims.get("scope", "").split()
    document["allowed_actions"] = [
        a
        for a in HTTP_ACTIONS
        if str(TRANSITIONS[a].actor) == role
        and (TRANSITIONS[a].scope is None or str(TRANSITIONS[a].scope) in scopes)
        and action_possible(facts, a, clock.today)
    ]
    document["cancel_overdue"] = rules.cancel_overdue(facts, clock)
    document["mappa_notice"] = rules.MAPPA_NOTICE if row["mappa"] else None
    return document


EVENT_SQL = """INSERT INTO referral_events (txid, referral_id, provider_id, type, occurred_at,
    actor_sub, actor_role, actor_provider_id, referral_version, status, data)
    VALUES (pg_current_xact_id()::text::bigint, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"""


async def create(request: Request) -> Response:
    claims = caller(request, "jcp")
    body = await json_body(request)
    programme = PROGRAMMES.get(body.get("programme"))
    participant = body.get("participant") or {}
    nino = rules.normalise_nino(str(participant.get("nino", "")))
    if programme is None or not rules.is_valid_nino(nino) or "provider_id" not in body:
        raise Problem(422, "validation-error", "Validation error")
    digest = nino_digest(nino, NINO_DIGEST_KEY)
    clock = Clock.at(real_now())
    today = clock.today
    async with POOL.acquire() as connection, connection.transaction():
        contract = await connection.fetchval(
            "SELECT id FROM contracts WHERE provider_id = $1 AND programme = $2 AND start_date"
            " <= $3 AND end_date >= $3 ORDER BY start_date DESC, id DESC LIMIT 1",
            body["provider_id"],
            programme["code"],
            today,
        )
        if contract is None:
            raise Problem(422, "no-contract", "No contract")
        prior = await connection.fetch(
            "SELECT status, end_code, re_referral FROM referrals"
            " WHERE nino_digest = $1 AND programme = $2",
            digest,
            programme["code"],
        )
        re_referral = rules.classify_new_referral(
            [SimpleNamespace(**p) for p in prior], programme["max_re_referrals"]
        )
        participant = participant | {"nino": nino}
        row = await connection.fetchrow(
            "INSERT INTO referrals (id, programme, provider_id, contract_id, status,"
            " nino_digest, referral_date, acknowledgement_due, auto_dna_on, initial_meeting_due,"
            " outcome_recorded_due, re_referral, mappa, participant, markers, details,"
            " created_at, updated_at, version) VALUES ($1, $2, $3, $4, 'referred', $5, $6, $7,"
            " $8, $9, $10, $11, false, $12, '{}', '{}', $13, $13, 1) RETURNING *",
            new_id(),
            programme["code"],
            body["provider_id"],
            contract,
            digest,
            today,
            rules.acknowledgement_deadline(today, programme["acknowledge_working_days"]),
            today + timedelta(days=programme["auto_dna_days"]),
            rules.working_day_deadline(today, programme["initial_meeting_working_days"]),
            rules.working_day_deadline(today, programme["outcome_recorded_working_days"]),
            re_referral,
            participant,
            clock.now,
        )
        await connection.execute(
            EVENT_SQL,
            row["id"],
            row["provider_id"],
            "created",
            clock.now,
            claims["sub"],
            "jcp",
            None,
            1,
            "referred",
            {
                "programme": programme["code"],
                "referral_date": today.isoformat(),
                "re_referral": re_referral,
            },
        )
    return answer(201, representation(row, claims, clock), etag=f'"{row["version"]}"')


def decide(action: ReferralAction, facts: Any, body: dict[str, Any], clock: Clock) -> Any:
    day = date.fromisoformat
    if action is A.acknowledge:
        return rules.acknowledge(clock)
    if action is A.accept:
        return rules.accept(facts, clock)
    if action is A.start:
        allotted = PROGRAMMES[facts.programme]["allotted_days"]
        return rules.start(facts, clock, day(body["start_date"]), None, allotted)
    return rules.end(
        facts,
        clock,
        EndCode(body["end_code"]),
        day(body["end_date"]),
        day(body["last_engagement_date"]),
        body.get("policy_reference"),
    )


async def act(request: Request) -> Response:
    claims = caller(request, "provider")
    if (action_name := request.path_params["action"]) not in LOOP_ACTIONS:
        raise Problem(404, "not-found", "Not found")
    action = ReferralAction(action_name)
    body = await json_body(request)
    clock = Clock.at(real_now())
    async with POOL.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT * FROM referrals WHERE id = $1 AND provider_id = $2 FOR UPDATE",
            request.path_params["id"],
            claims["provider_id"],
        )
        if row is None:
            raise Problem(404, "not-found", "Not found")
        facts = SimpleNamespace(**row)
        check_state(facts, action)
        check_time_rules(facts, action, clock.today)
        try:
            change = decide(action, facts, body, clock)
        except (KeyError, ValueError, TypeError) as error:
            raise Problem(422, "validation-error", "Validation error") from error
        names = [*change.fields, "updated_at"]
        assignments = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=3))
        row = await connection.fetchrow(
            f"UPDATE referrals SET {assignments}, version = version + 1"
            " WHERE id = $1 AND version = $2 RETURNING *",
            row["id"],
            row["version"],
            *change.fields.values(),
            clock.now,
        )
        await connection.execute(
            EVENT_SQL,
            row["id"],
            row["provider_id"],
            str(TRANSITIONS[action].event),
            clock.now,
            claims["sub"],
            "provider",
            claims["provider_id"],
            row["version"],
            row["status"],
            {k: v for k, v in change.event_data.items() if v is not None},
        )
    return answer(200, representation(row, claims, clock), etag=f'"{row["version"]}"')


async def get(request: Request) -> Response:
    claims = caller(request, "provider")
    async with POOL.acquire() as connection:
        row = await connection.fetchrow(
            "SELECT * FROM referrals WHERE id = $1 AND provider_id = $2",
            request.path_params["id"],
            claims["provider_id"],
        )
    if row is None:
        raise Problem(404, "not-found", "Not found")
    return answer(
        200, representation(row, claims, Clock.at(real_now())), etag=f'"{row["version"]}"'
    )


async def ready(_request: Request) -> Response:
    return answer(200, {"status": "ready"})


async def _json_codec(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    global POOL, PROGRAMMES
    POOL = await asyncpg.create_pool(DSN, min_size=2, max_size=20, init=_json_codec)
    PROGRAMMES = {r["code"]: dict(r) for r in await POOL.fetch("SELECT * FROM programmes")}
    yield
    await POOL.close()


async def on_problem(_request: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)
    return problem(error)


POOL: asyncpg.Pool
PROGRAMMES: dict[str, dict[str, Any]] = {}
routes = [
    Route("/readyz", ready),
    Route("/v1/referrals", create, methods=["POST"]),
    Route("/v1/referrals/{id}", get, methods=["GET"]),
    Route("/v1/referrals/{id}/{action}", act, methods=["POST"]),
]
ROUTES = {route.endpoint: route.path for route in routes}
app = AccessLog(
    Starlette(lifespan=lifespan, routes=routes, exception_handlers={ProblemError: on_problem})
)
