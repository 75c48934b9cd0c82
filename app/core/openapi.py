"""The OpenAPI document: problems, headers and examples on every operation, in one place.

Routes declare the problems particular to them (``problem_responses``); the problems every
operation can answer (authentication, media type, validation, the write boundary, server
errors) are added here, so that no operation can forget them. Each operation's problem
``code`` is then a named enum of exactly the codes its responses declare.

The headers the service sends are declared here too, by rule (every response carries
``X-Request-ID``; a 201 carries ``Location``; a representation with a ``version`` carries
``ETag``; ...), and each operation's examples come from ``openapi/examples.json``, recorded
from a real exchange by ``prap examples`` (``app/examples.py``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.problems import (
    PROBLEM_CODES_KEY,
    PROBLEM_CONTENT_TYPE,
    FieldError,
    Forbidden,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    Problem,
    ProblemError,
    ServiceUnavailable,
    SpecialCustomerRecord,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationProblem,
    problem_catalogue,
)

# Semantic version of the document: bump it with every change to the document (minor for
# additions, major for removals and changes a client could break on) and say what changed
# in CHANGELOG.md. ``prap openapi`` refuses to write a changed document under an old version.
API_VERSION = "1.2.0"

EXAMPLES_FILE = Path(__file__).resolve().parent.parent.parent / "openapi" / "examples.json"

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_INTERNAL = ProblemError
_METHODS = ("get", "put", "post", "delete", "patch")


def _idempotency_header(max_length: int) -> dict[str, Any]:
    return {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": (
            "Makes a retry safe: the same key with the same body, from the same caller, within "
            "24 hours gets the first answer again (status, headers and body, with "
            "`idempotent-replayed: true`) and nothing is done twice. A UUID is a good key. "
            f"1 to {max_length} printable ASCII characters."
        ),
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": max_length,
            "pattern": r"^[ -~]+$",
        },
        "example": "3f1d7a52-6c1e-4b8e-9a55-2f0c9d2d8b61",
    }


# Operations whose answers can carry personal data are never stored by caches.
HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id: the one you sent (1-200 characters), or a new one. "
        "Quote it when you report a problem.",
        "schema": {"type": "string"},
    },
    "X-Content-Type-Options": {
        "description": "Always `nosniff`.",
        "schema": {"type": "string", "enum": ["nosniff"]},
    },
    "Cache-Control": {
        "description": "`no-store` on every answer that can carry personal data.",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": 'The representation\'s strong entity tag, its `version` in quotes (`"3"`).'
        " Send it back in `If-Match` to act only on what you read, or in `If-None-Match` to "
        "be told (304) that nothing changed.",
        "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
    },
    "Location": {
        "description": "The path of the resource just created.",
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "idempotent-replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the "
        "same `Idempotency-Key` (nothing was done again).",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "WWW-Authenticate": {
        "description": "`Bearer`: the authentication scheme to use (RFC 6750).",
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer", "minimum": 0},
    },
}

TAGS: list[dict[str, str]] = [
    {
        "name": "referrals",
        "description": "Referrals from Jobcentre Plus to a provider and their lifecycle: "
        "acknowledge, accept or reject, start or a non-start, end. `allowed_actions` on every "
        "referral says what the caller may do next.",
    },
    {
        "name": "events",
        "description": "The change feed: every referral event in commit order. Poll with the "
        "last `cursor` you read; nothing is skipped or repeated.",
    },
    {"name": "claims", "description": "Payment claims: attachment, job outcome, sustainment."},
    {"name": "payments", "description": "Payment runs and remittance (JSON or CSV)."},
    {"name": "programmes", "description": "The programme catalogue and its parameters."},
    {"name": "contracts", "description": "Providers' contracts and their price schedules."},
    {
        "name": "service credits",
        "description": "Customer service standards (CSS 1, CSS 2) and the service-fee "
        "deductions they earn (Job Finding Support guidance, paragraphs 6.07-6.10 and 7.44).",
    },
    {"name": "jobs", "description": "The daily automatic closes, run on demand."},
    {
        "name": "sandbox",
        "description": "Test harness helpers, only when the service runs in sandbox mode "
        "(otherwise 404): a settable clock and token minting. No token needed.",
    },
    {"name": "problems", "description": "The error catalogue: what each problem code means."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def _component_header(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{name}"}


def _add_codes(operation: dict[str, Any], status: int, codes: list[str]) -> None:
    responses = operation.setdefault("responses", {})
    response = responses.setdefault(str(status), {})
    known: list[str] = response.get(PROBLEM_CODES_KEY, [])
    response[PROBLEM_CODES_KEY] = known + [c for c in codes if c not in known]


def _plain_optional_body(operation: dict[str, Any]) -> None:
    """An optional body is documented as its schema, not ``anyOf [schema, null]``.

    FastAPI renders ``body: Model | None = None`` as a nullable schema; the absence of a body
    is already said by ``required: false``. Generated clients otherwise send the "unset"
    marker itself as JSON when the caller leaves the body out.
    """
    body = operation.get("requestBody")
    if not body or body.get("required"):
        return
    for media in body.get("content", {}).values():
        branches = media.get("schema", {}).get("anyOf", [])
        refs = [b for b in branches if "$ref" in b]
        if len(branches) == 2 and len(refs) == 1 and {"type": "null"} in branches:
            media["schema"] = refs[0]


def _add_common_problems(
    path: str, method: str, operation: dict[str, Any], idempotency_header: dict[str, Any]
) -> None:
    """The problems every operation of its kind can answer (api-contract.md, order of checks)."""
    has_body = "requestBody" in operation
    if operation.get("security"):
        _add_codes(operation, 401, [Unauthenticated.code])
        _add_codes(operation, 403, [Forbidden.code])
    if has_body:
        _add_codes(operation, 413, ["payload-too-large"])
        _add_codes(operation, 415, [UnsupportedMediaType.code])
        # Only a body can carry the SCR flag (GEN 62-64): operations without one never see it.
        _add_codes(operation, 422, [SpecialCustomerRecord.code])
    if operation.get("parameters") or has_body or "422" in operation.get("responses", {}):
        _add_codes(operation, 422, [ValidationProblem.code])
    if method == "post" and operation.get("security"):
        operation.setdefault("parameters", []).append(idempotency_header)
        _add_codes(operation, 409, [IdempotencyKeyInUse.code])
        _add_codes(operation, 422, [IdempotencyKeyReused.code])
        _add_codes(operation, 422, [ValidationProblem.code])
    _add_codes(operation, 500, [_INTERNAL.code])
    if path.startswith("/v1"):
        _add_codes(operation, 503, [ServiceUnavailable.code])


def _pascal(operation_id: str) -> str:
    return operation_id[:1].upper() + operation_id[1:]


def _type_problems(
    operation: dict[str, Any], schemas: dict[str, Any], titles: dict[str, str]
) -> None:
    """Each error response's body is ``{OperationId}Problem``: the problem schema with
    ``code`` narrowed to a named enum of the codes the operation's responses declare."""
    codes: list[str] = []
    for _status, response in sorted(operation["responses"].items()):
        for code in response.get(PROBLEM_CODES_KEY, []):
            if code not in codes:
                codes.append(code)
    if not codes:
        return
    name = _pascal(operation["operationId"])
    schemas[f"{name}ProblemCode"] = {
        "type": "string",
        "enum": codes,
        "title": f"{name}ProblemCode",
        "description": f"The problem codes `{operation['operationId']}` can answer: "
        + "; ".join(f"`{code}` ({titles[code]})" for code in codes)
        + ". Each is explained at `/problems/{code}`.",
    }
    schemas[f"{name}Problem"] = {
        "title": f"{name}Problem",
        "allOf": [
            _PROBLEM_REF,
            {
                "type": "object",
                "properties": {"code": {"$ref": f"#/components/schemas/{name}ProblemCode"}},
            },
        ],
    }
    for status, response in operation["responses"].items():
        found = response.pop(PROBLEM_CODES_KEY, None)
        if found is None:
            continue
        response["description"] = f"{HTTPStatus(int(status)).phrase}: " + ", ".join(
            f"`{c}`" for c in found
        )
        response["content"] = {
            PROBLEM_CONTENT_TYPE: {"schema": {"$ref": f"#/components/schemas/{name}Problem"}}
        }


def _schema_of(response: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        found: dict[str, Any] = schemas.get(ref.rsplit("/", 1)[1], {})
        return found
    return {}


def _declare_headers(
    path: str, method: str, operation: dict[str, Any], schemas: dict[str, Any]
) -> None:
    """The headers each response carries, by the rules the service sends them by. Every /v1
    answer is ``no-store`` (app.core.observability), whether or not it showed personal
    data this time."""
    personal = path.startswith("/v1/")
    idempotent = any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", []))
    for status, response in operation["responses"].items():
        code = int(status)
        headers: dict[str, Any] = {
            "X-Request-ID": _component_header("X-Request-ID"),
            "X-Content-Type-Options": _component_header("X-Content-Type-Options"),
        }
        if personal:
            headers["Cache-Control"] = _component_header("Cache-Control")
        if code < 400 and "version" in _schema_of(response, schemas).get("properties", {}):
            headers["ETag"] = _component_header("ETag")
        if code == 304:
            headers["ETag"] = _component_header("ETag")
        if code == 201:
            headers["Location"] = _component_header("Location")
        if idempotent and code < 500:
            headers["idempotent-replayed"] = _component_header("idempotent-replayed")
        if code == 401:
            headers["WWW-Authenticate"] = _component_header("WWW-Authenticate")
        if code == 503:
            headers["Retry-After"] = _component_header("Retry-After")
        response["headers"] = headers | response.get("headers", {})


def load_examples() -> dict[str, Any]:
    if not EXAMPLES_FILE.exists():
        return {}
    examples: dict[str, Any] = json.loads(EXAMPLES_FILE.read_text())
    return examples


def _attach_examples(operation: dict[str, Any], recorded: dict[str, Any]) -> None:
    """The recorded exchange's request body and responses, on their media types."""
    exchange = recorded.get(operation["operationId"])
    if not exchange:
        return
    body = operation.get("requestBody", {}).get("content", {})
    if "request" in exchange:
        for media in body.values():
            media["example"] = exchange["request"]
    for status, answer in exchange.get("responses", {}).items():
        response = operation["responses"].get(status)
        if response is None:
            continue
        for media_type, media in response.get("content", {}).items():
            kind = media_type.split(";")[0]
            if kind in answer:
                media["example"] = answer[kind]


def build_openapi(
    app: FastAPI,
    *,
    idempotency_key_max_length: int,
    named_int_enums: Sequence[type[enum.IntEnum]] = (),
) -> dict[str, Any]:
    """The document. What it says of features comes from ``app.main``, which wires them (core
    imports no feature): the longest ``Idempotency-Key`` the store accepts, and the integer
    enums whose members have names, which generated clients then use (``EndCode.FOUND_WORK``
    rather than ``EndCode.VALUE_1``) through the ``x-enum-varnames`` extension."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        tags=TAGS,
        servers=app.servers,
        contact=app.contact,
        license_info=app.license_info,
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Problem"].pop("$defs", None)
    catalogue = problem_catalogue()
    schemas["Problem"]["properties"]["code"] = {"$ref": "#/components/schemas/ProblemCode"}
    schemas["ProblemCode"] = {
        "type": "string",
        "title": "ProblemCode",
        "enum": [entry.code for entry in catalogue],
        "description": "Every problem code; `/problems/{code}` explains each.",
    }
    schemas["FieldError"] = FieldError.model_json_schema()
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    components["headers"] = {
        name: {"description": h["description"], "schema": h["schema"]}
        for name, h in HEADERS.items()
    }
    for named in named_int_enums:
        if named.__name__ in schemas:
            schemas[named.__name__]["x-enum-varnames"] = [m.name.upper() for m in named]
    titles = {entry.code: entry.title for entry in catalogue}
    idempotency_header = _idempotency_header(idempotency_key_max_length)
    recorded = load_examples()
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method not in item:
                continue
            operation = item[method]
            _plain_optional_body(operation)
            _add_common_problems(path, method, operation, idempotency_header)
            if path.startswith("/v1/sandbox"):
                operation["x-sandbox-only"] = True
            operation["responses"] = dict(
                sorted(operation["responses"].items(), key=lambda kv: kv[0])
            )
            _type_problems(operation, schemas, titles)
            _declare_headers(path, method, operation, schemas)
            _attach_examples(operation, recorded)
            # Said outright: no token needed (health, the catalogue, the sandbox).
            operation.setdefault("security", [])
    app.openapi_schema = document
    return document
