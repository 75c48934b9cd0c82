"""The baseline: the API's per-request duties with nothing but Starlette and asyncpg.

What Python needs for the benchmark loop (create, acknowledge, accept, start, end, get),
to compare the API's server CPU with (issue 13). Each duty is the API's as it stands
(``app/referrals/service.py``, ``app/core/*`` middlewares), done with the project's own pure
functions where it has them:

- **Boundary** (``app.core.boundary``): 413 over 1 MiB, a Special Customer Record body
  refused before authentication (domain.md §2), a body that is not JSON or nested too deep
  refused after it.
- **Caller**: the JWT verified with python-jose (verified tokens remembered, expiry checked
  every time, as ``app.core.auth``); role, scope and tenancy.
- **One transaction per request**, the read included (its audit row is a write).
- **Create**: MAPPA contact rule, the contract in force, the participant's advisory lock, every
  referral of the participant (by the keyed NINO digest, GEN 136) settled and classified
  (open referral JFS 5.19, re-referral JFS 3.42/5.16/1.23, exclusive programmes HTW 70), the
  partial unique index's refusal as 409.
- **Action**: the row locked (``FOR UPDATE``), past deadlines settled first (JFS 3.40, 5.08),
  ``If-Match``, state and time rules, segregation of duties for start and end (GEN 122),
  the change, UPDATE conditional on the version (0 rows: 409).
- **Get**: deadlines settled, ``If-None-Match`` (304).
- **Every change** appends its event with its transaction id and, in the same statement, one
  pending ``webhook_deliveries`` row per matching subscription of the provider (the outbox,
  api-contract.md Webhooks).
- **Every answer showing personal data** writes its read audit row (``referral_reads``: who,
  when, which referral, which operation; domain.md §10, GEN 71) in the same transaction.
- **The answer**: the row as JSON with ``allowed_actions``, ``ETag`` (and ``Location`` for a
  create), ``X-Request-ID``, ``nosniff`` and ``no-store``; the request's Prometheus metrics and
  one JSON access log line at INFO.

What it leaves out is framework: no ORM, no pydantic, no dependency injection. The load mix
sends no ``Idempotency-Key``, so the idempotency store is not handled here; nor are the
routes the loop never calls. Run by ``benchmarks.load``:

    PRAP_DATABASE_URL=postgresql://... PRAP_JWT_SECRET=... \
        uvicorn benchmarks.baseline:app --workers 2 --no-access-log
"""

from __future__ import annotations

import gc
import json
import logging
import os
import re
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

from app.core.boundary import MAX_BODY_BYTES, PayloadTooLarge, inspect
from app.core.clock import Clock, real_now
from app.core.etags import etag, if_match_allows, if_none_match_matches
from app.core.ids import new_id
from app.core.observability import LATENCY, REQUESTS
from app.core.problems import (
    Forbidden,
    InvalidTransition,
    NoContract,
    NotFound,
    OpenReferralExists,
    PreconditionFailed,
    ProblemError,
    SegregationOfDuties,
    SpecialCustomerRecord,
    Unauthenticated,
    ValidationProblem,
)
from app.programmes.schemas import AllottedFrom
from app.referrals import rules
from app.referrals.digests import nino_digest
from app.referrals.states import EndCode, ReferralAction, ReferralStatus
from app.referrals.transitions import (
    HTTP_ACTIONS,
    TRANSITIONS,
    action_possible,
    check_state,
    check_time_rules,
    due_system_action,
)

SECRET = os.environ.get("PRAP_JWT_SECRET", "")
# The API finds a participant's referrals by a keyed digest of the NINO (GEN 136): so does this.
NINO_DIGEST_KEY = os.environ.get("PRAP_NINO_DIGEST_KEY", "bench-nino-digest-key")
DSN = os.environ.get("PRAP_DATABASE_URL", "").replace("postgresql+asyncpg", "postgresql")
A = ReferralAction
LOOP_ACTIONS = {
    A.acknowledge: "acknowledgeReferral",
    A.accept: "acceptReferral",
    A.start: "startReferral",
    A.end: "endReferral",
}
SEGREGATED_ACTIONS = {A.start, A.end}  # GEN 122, as app.referrals.service
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# api-contract.md, The boundary: nosniff everywhere, and no answer under /v1 is ever cached.
_ADDED_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))


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
    """Request id, the boundary's headers, metrics and one JSON line per request (method,
    route, status, duration), as ``app.core.observability.RequestContextMiddleware``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        added = [(b"x-request-id", request_id.encode()), *_ADDED_HEADERS]

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = ROUTES.get(scope.get("endpoint"), "unmatched")  # type: ignore[arg-type]
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(scope["method"], route).observe(elapsed)
            fields = {
                "request_id": request_id,
                "method": scope["method"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
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
        "type": f"/problems/{error.code}",
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
        raise Unauthenticated()
    if claims.get("role") != role or (
        role == "provider" and "referrals" not in claims.get("scope", "").split()
    ):
        raise Forbidden()
    return claims


async def checked_body(request: Request) -> tuple[bytes, str | None]:
    """The boundary, before the caller is known: size, then Special Customer Records; the
    body, and what is wrong with it as JSON (reported once the caller is known)."""
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    is_scr, not_acceptable = inspect(raw)
    if is_scr:  # domain.md §2: before anything else, authentication included
        raise SpecialCustomerRecord()
    return raw, not_acceptable


def json_body(raw: bytes, not_acceptable: str | None) -> dict[str, Any]:
    """The body as an object, once the caller is known (401 and 403 come first)."""
    body = None if not_acceptable else json.loads(raw or b"{}")
    if not isinstance(body, dict):
        raise ValidationProblem()
    return body


def facts(row: asyncpg.Record) -> Any:
    """A row as the pure rules read it (attributes, like the ORM's ``Referral``)."""
    return SimpleNamespace(**row)


def representation(row: asyncpg.Record, claims: dict[str, Any], clock: Clock) -> dict[str, Any]:
    referral = facts(row)
    document = dict(row)
    document.pop("nino_digest")  # never shown, as in the API
    role, scopes = claims["role"], claims.get("scope", "").split()
    document["allowed_actions"] = [
        a
        for a in HTTP_ACTIONS
        if str(TRANSITIONS[a].actor) == role
        and (TRANSITIONS[a].scope is None or str(TRANSITIONS[a].scope) in scopes)
        and action_possible(referral, a, clock.today)
    ]
    document["cancel_overdue"] = rules.cancel_overdue(referral, clock)
    document["mappa_notice"] = rules.MAPPA_NOTICE if row["mappa"] else None
    return document


# The event and its outbox in one statement: the deliveries name the event's id, and match
# the provider's subscriptions as ``app.webhooks.repository.subscribed_to`` does (all types,
# or the type in the delimited list, its underscores escaped for LIKE).
EVENT_SQL = r"""WITH event AS (
    INSERT INTO referral_events (txid, referral_id, provider_id, type, occurred_at, actor_sub,
        actor_role, actor_provider_id, referral_version, status, data)
    VALUES (pg_current_xact_id()::text::bigint, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING id, referral_id, provider_id, type, occurred_at)
INSERT INTO webhook_deliveries (subscription_id, event_id, referral_id, event_type, status,
    attempts, created_at, next_attempt_at)
SELECT s.id, e.id, e.referral_id, e.type, 'pending', 0, e.occurred_at, e.occurred_at
FROM event AS e JOIN webhook_subscriptions AS s ON s.provider_id = e.provider_id
WHERE s.event_types IS NULL
    OR s.event_types LIKE '%,' || replace(e.type, '_', '\_') || ',%' ESCAPE '\'"""

READ_SQL = """INSERT INTO referral_reads (read_id, referral_id, at, actor_sub, actor_role,
    actor_provider_id, operation) VALUES ($1, $2, $3, $4, $5, $6, $7)"""


async def record_event(
    connection: asyncpg.Connection,
    row: asyncpg.Record,
    event_type: str,
    claims: dict[str, Any] | None,
    clock: Clock,
    data: dict[str, Any],
) -> None:
    """The event and its pending deliveries; ``claims`` of None is the service itself."""
    sub, role = ("system", "system") if claims is None else (claims["sub"], claims["role"])
    provider = None if claims is None else claims.get("provider_id")
    await connection.execute(
        EVENT_SQL,
        row["id"],
        row["provider_id"],
        event_type,
        clock.now,
        sub,
        role,
        provider,
        row["version"],
        row["status"],
        {k: v for k, v in data.items() if v is not None},
    )


async def record_read(
    connection: asyncpg.Connection,
    row: asyncpg.Record,
    claims: dict[str, Any],
    clock: Clock,
    operation: str,
) -> None:
    """domain.md §10: this answer showed the participant (an erased referral shows none)."""
    if row["erased_at"] is None:
        await connection.execute(
            READ_SQL,
            new_id(),
            row["id"],
            clock.now,
            claims["sub"],
            claims["role"],
            claims.get("provider_id"),
            operation,
        )


async def write_change(
    connection: asyncpg.Connection,
    row: asyncpg.Record,
    action: ReferralAction,
    change: rules.Change,
    claims: dict[str, Any] | None,
    clock: Clock,
) -> asyncpg.Record:
    """The change, conditional on the version read, and its event."""
    names = [*change.fields, "updated_at"]
    assignments = ", ".join(f"{n} = ${i}" for i, n in enumerate(names, start=3))
    changed = await connection.fetchrow(
        f"UPDATE referrals SET {assignments}, version = version + 1"
        " WHERE id = $1 AND version = $2 RETURNING *",
        row["id"],
        row["version"],
        *change.fields.values(),
        clock.now,
    )
    if changed is None:
        raise InvalidTransition("The referral changed meanwhile; read it again.")
    event = str(TRANSITIONS[action].event)
    await record_event(connection, changed, event, claims, clock, change.event_data)
    return changed


async def settled(connection: asyncpg.Connection, row: asyncpg.Record, clock: Clock) -> Any:
    """JFS 3.40, 5.08: a referral past its deadline is closed by the first path to touch it,
    locked and read again first (as ``app.referrals.service.settle_deadlines``)."""
    if due_system_action(facts(row), clock.today) is None:
        return row
    row = await connection.fetchrow("SELECT * FROM referrals WHERE id = $1 FOR UPDATE", row["id"])
    action = due_system_action(facts(row), clock.today)
    if action is None:
        return row  # the job closed it meanwhile
    return await write_change(
        connection,
        row,
        action,
        TRANSITIONS[action].effect(facts(row), None, None, clock),
        None,
        clock,
    )


def has_contact_details(participant: dict[str, Any]) -> bool:
    """Address, postcode or a telephone number (SES 3.32), as ``Participant``."""
    address = participant.get("address") or {}
    return bool(address.get("lines") or address.get("postcode") or participant.get("phone")) or (
        bool(participant.get("mobile"))
    )


MARKERS = ("mappa", "safeguard", "disadvantaged", "incident", "disabled")


async def create(request: Request) -> Response:
    raw, not_acceptable = await checked_body(request)
    claims = caller(request, "jcp")
    body = json_body(raw, not_acceptable)
    programme = PROGRAMMES.get(str(body.get("programme")))
    participant = body.get("participant") or {}
    nino = rules.normalise_nino(str(participant.get("nino", "")))
    names = [participant.get(n) for n in ("forename", "surname")]
    if (
        programme is None
        or not rules.is_valid_nino(nino)
        or not isinstance(body.get("provider_id"), str)
        or not all(isinstance(n, str) and 0 < len(n) <= 100 for n in names)
    ):
        raise ValidationProblem()
    markers = {name: (body.get("markers") or {}).get(name) is True for name in MARKERS}
    rules.check_mappa(markers["mappa"], has_contact_details(participant))
    code, digest = programme["code"], nino_digest(nino, NINO_DIGEST_KEY)
    clock = Clock.at(real_now())
    today = clock.today
    async with POOL.acquire() as connection, connection.transaction():
        contract = await connection.fetchval(
            "SELECT id FROM contracts WHERE provider_id = $1 AND programme = $2 AND start_date"
            " <= $3 AND end_date >= $3 ORDER BY start_date DESC, id DESC LIMIT 1",
            body["provider_id"],
            code,
            today,
        )
        if contract is None:
            raise NoContract()
        # Referrals of one participant queue here: HTW 70 has no unique index to hold it.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", digest)
        their_referrals = [
            facts(await settled(connection, r, clock))
            for r in await connection.fetch(
                "SELECT * FROM referrals WHERE nino_digest = $1 ORDER BY id", digest
            )
        ]
        re_referral = rules.classify_new_referral(
            [r for r in their_referrals if r.programme == code],
            programme["max_re_referrals"],
            programme["max_duration_working_days"],
        )
        rules.check_exclusive_programmes(
            [
                r.programme
                for r in their_referrals
                if r.programme != code and ReferralStatus(r.status).is_open
            ],
            EXCLUSIVE,
        )
        try:
            row = await connection.fetchrow(
                "INSERT INTO referrals (id, programme, provider_id, contract_id, status,"
                " nino_digest, referral_date, acknowledgement_due, auto_dna_on,"
                " initial_meeting_due, outcome_recorded_due, re_referral, mappa, participant,"
                " markers, details, created_at, updated_at, version) VALUES ($1, $2, $3, $4,"
                " 'referred', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, 1)"
                " RETURNING *",
                new_id(),
                code,
                body["provider_id"],
                contract,
                digest,
                today,
                rules.acknowledgement_deadline(today, programme["acknowledge_working_days"]),
                today + timedelta(days=programme["auto_dna_days"]),
                rules.working_day_deadline(today, programme["initial_meeting_working_days"]),
                rules.working_day_deadline(today, programme["outcome_recorded_working_days"]),
                re_referral,
                markers["mappa"],
                {"welsh_language": False}
                | {k: v for k, v in participant.items() if v is not None}
                | {"nino": nino},
                markers,
                body.get("details") or {},
                clock.now,
            )
        except asyncpg.UniqueViolationError as error:  # the open-referral index (JFS 5.19)
            raise OpenReferralExists() from error
        data = {"programme": code, "referral_date": today.isoformat(), "re_referral": re_referral}
        await record_event(connection, row, "created", claims, clock, data)
        await record_read(connection, row, claims, clock, "createReferral")
    return answer(
        201,
        representation(row, claims, clock),
        etag=etag(row["version"]),
        location=f"/v1/referrals/{row['id']}",
    )


def decide(action: ReferralAction, referral: Any, body: dict[str, Any], clock: Clock) -> Any:
    day = date.fromisoformat
    if action is A.acknowledge:
        return rules.acknowledge(clock)
    if action is A.accept:
        return rules.accept(referral, clock)
    if action is A.start:
        programme = PROGRAMMES[referral.programme]
        return rules.start(
            referral,
            clock,
            day(body["start_date"]),
            body.get("provider_reference"),
            programme["allotted_days"],
            programme["allotted_from"],
        )
    return rules.end(
        referral,
        clock,
        EndCode(body["end_code"]),
        day(body["end_date"]),
        day(body["last_engagement_date"]),
        body.get("policy_reference"),
    )


async def act(request: Request) -> Response:
    raw, not_acceptable = await checked_body(request)
    claims = caller(request, "provider")
    if (action_name := request.path_params["action"]) not in LOOP_ACTIONS:
        raise NotFound()
    action = ReferralAction(action_name)
    body = json_body(raw, not_acceptable)
    clock = Clock.at(real_now())
    async with POOL.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT * FROM referrals WHERE id = $1 AND provider_id = $2 FOR UPDATE",
            request.path_params["id"],
            claims["provider_id"],
        )
        if row is None:
            raise NotFound("No such referral.")
        row = await settled(connection, row, clock)
        if_match = request.headers.get("if-match")
        if if_match is not None and not if_match_allows(if_match, row["version"]):
            raise PreconditionFailed()
        referral = facts(row)
        check_state(referral, action)
        check_time_rules(referral, action, clock.today)
        if action in SEGREGATED_ACTIONS and await connection.fetchval(
            "SELECT EXISTS (SELECT 1 FROM claims WHERE referral_id = $1 AND submitted_by = $2"
            " AND provider_id = $3)",
            row["id"],
            claims["sub"],
            claims["provider_id"],
        ):
            raise SegregationOfDuties()
        try:
            change = decide(action, referral, body, clock)
        except (KeyError, ValueError, TypeError) as error:
            raise ValidationProblem() from error
        row = await write_change(connection, row, action, change, claims, clock)
        await record_read(connection, row, claims, clock, LOOP_ACTIONS[action])
    return answer(200, representation(row, claims, clock), etag=etag(row["version"]))


async def get(request: Request) -> Response:
    claims = caller(request, "provider")
    clock = Clock.at(real_now())
    async with POOL.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(
            "SELECT * FROM referrals WHERE id = $1 AND provider_id = $2",
            request.path_params["id"],
            claims["provider_id"],
        )
        if row is None:
            raise NotFound("No such referral.")
        row = await settled(connection, row, clock)
        await record_read(connection, row, claims, clock, "getReferral")
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and if_none_match_matches(if_none_match, row["version"]):
        return Response(status_code=304, headers={"etag": etag(row["version"])})
    return answer(200, representation(row, claims, clock), etag=etag(row["version"]))


async def ready(_request: Request) -> Response:
    return answer(200, {"status": "ready"})


async def _json_codec(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    global POOL, PROGRAMMES, EXCLUSIVE
    POOL = await asyncpg.create_pool(DSN, min_size=2, max_size=20, init=_json_codec)
    # Read once per process, as ``app.programmes.service.catalogue``.
    PROGRAMMES = {
        r["code"]: dict(r) | {"allotted_from": AllottedFrom(r["allotted_from"])}
        for r in await POOL.fetch("SELECT * FROM programmes")
    }
    EXCLUSIVE = frozenset(code for code, p in PROGRAMMES.items() if p["exclusive"])
    # As the API does (app.main): what start-up built stays out of the collector's full
    # passes. The same runtime setting for both, so the comparison is of the work per request.
    gc.freeze()
    yield
    await POOL.close()


async def on_problem(_request: Request, error: Exception) -> Response:
    assert isinstance(error, ProblemError)
    return problem(error)


POOL: asyncpg.Pool
PROGRAMMES: dict[str, dict[str, Any]] = {}
EXCLUSIVE: frozenset[str] = frozenset()
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
