"""The OpenAPI document: problem responses on every operation, in one place.

Routes declare the problems particular to them (``problem_responses``); the problems every
operation can answer (authentication, validation, the write boundary, server errors) are
added here, so that no operation can forget them.
"""

from __future__ import annotations

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

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
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
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "post", "put", "delete", "patch"}:
                continue
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
