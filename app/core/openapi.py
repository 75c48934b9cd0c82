"""The OpenAPI document: problem responses on every operation, in one place.

Routes declare the problems particular to them (``problem_responses``); the problems every
operation can answer (authentication, validation, the write boundary, server errors) are
added here, so that no operation can forget them.
"""

from __future__ import annotations

import enum
from http import HTTPStatus
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
    SpecialCustomerRecord,
    ValidationProblem,
)
from app.referrals.states import EndCode

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Integer enums whose members have names: generated clients use them (`EndCode.FOUND_WORK`
# rather than `EndCode.VALUE_1`) through the `x-enum-varnames` extension.
_NAMED_INT_ENUMS: tuple[type[enum.IntEnum], ...] = (EndCode,)
_INTERNAL = ProblemError
_IDEMPOTENCY_HEADER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Replays the first response for 24 hours when sent again with the same body.",
    "schema": {"type": "string", "maxLength": 255},
}


def _add_codes(operation: dict[str, Any], status: int, codes: list[str]) -> None:
    responses = operation.setdefault("responses", {})
    response = responses.setdefault(str(status), {})
    known: list[str] = response.get(PROBLEM_CODES_KEY, [])
    merged = known + [c for c in codes if c not in known]
    response[PROBLEM_CODES_KEY] = merged
    response["description"] = f"{HTTPStatus(status).phrase}: " + ", ".join(f"`{c}`" for c in merged)
    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}}


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


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas["Problem"].pop("$defs", None)
    schemas["FieldError"] = FieldError.model_json_schema()
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    for named in _NAMED_INT_ENUMS:
        if named.__name__ in schemas:
            schemas[named.__name__]["x-enum-varnames"] = [m.name.upper() for m in named]
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "delete", "patch"}:
                continue
            _plain_optional_body(operation)
            if operation.get("security"):
                _add_codes(operation, 401, ["unauthenticated"])
                _add_codes(operation, 403, [Forbidden.code])
            if operation.get("parameters") or operation.get("requestBody"):
                _add_codes(operation, 422, [ValidationProblem.code])
            if method in {"post", "put", "patch"}:
                _add_codes(operation, 422, [SpecialCustomerRecord.code])
                _add_codes(operation, 413, ["payload-too-large"])
            if method == "post" and operation.get("security"):
                operation.setdefault("parameters", []).append(_IDEMPOTENCY_HEADER)
                _add_codes(operation, 409, [IdempotencyKeyInUse.code])
                _add_codes(operation, 422, [IdempotencyKeyReused.code])
            _add_codes(operation, 500, [_INTERNAL.code])
            if path.startswith("/v1/sandbox"):
                operation["x-sandbox-only"] = True
            operation["responses"] = dict(
                sorted(operation["responses"].items(), key=lambda kv: kv[0])
            )
    app.openapi_schema = document
    return document
