"""Schemathesis against the in-process app, authenticated as each role, on the test database.

Every operation of the OpenAPI document gets generated requests (valid and invalid ones),
sent with a valid bearer token for the role: no response may be a 5xx, and every response's
status code, content type and body must be the ones the document gives for the operation.
Operations with an ``{id}`` are also called with the id of a real object (seeded first), and
bodies that name a referral, a provider or a NINO are sent again naming real ones, so that the
domain rules run and not only the 404.

What it found is pinned by ``test_fuzz_findings`` at the end: the NUL character (PostgreSQL
text cannot hold it) and the year 0000 (no month before it) were 500s.

Schemathesis runs the app in its own event-loop thread (its ASGI transport is synchronous),
so this test builds its own app with ``create_app(settings)`` instead of the session ``app``
fixture, whose engine belongs to the pytest-asyncio loop; the lifespan it starts there is shut
down (and the engine disposed) at the end of the module.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from app import main
from app.core.settings import Settings
from app.idempotency.service import MAX_KEY_LENGTH, is_valid_key
from app.main import create_app
from tests.helpers import PROVIDER, referral_body, token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # The schema says exactly what the server enforces (issue 15): data it calls invalid is
    # refused, and data it calls valid is never refused as invalid.
    negative_data_rejection,
    positive_data_acceptance,
]

ROLES: dict[str, dict[str, Any]] = {
    "jcp": {"role": "jcp"},
    "post": {"role": "post"},
    "admin": {"role": "admin"},
    "provider": {"role": "provider", "provider_id": PROVIDER, "scopes": ("referrals", "claims")},
}

# Operations are fuzzed in a fixed order with a fixed seed: the same requests on every run.
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260301,
        "cache": {"enabled": False},
        "generation": {
            "mode": "all",
            "database": "none",
            "deterministic": True,
            # The bearer token is the role's, always: no generated Authorization headers.
            "with-security-parameters": False,
        },
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
        "checks": {
            # Schema-valid data may still meet the domain's own answers (a role without
            # access, an unknown id, a conflict, a stale If-Match, a domain rule's 422):
            # those count as acceptance. A 422 `validation-error` does not (see _send).
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "412", "422"]
            },
        },
    }
)

# The document the app serves at /openapi.json (the same whatever the settings, api-contract.md),
# read at import time because ``parametrize`` needs the operations at collection; requests go
# to ``fuzz_app`` (``app=`` below), built from the test settings.
SCHEMA = schemathesis.openapi.from_dict(main.app.openapi(), config=CONFIG)

SEEDED_NINO = "CE654321A"

# Where a real object's id comes from, by path prefix.
ID_KINDS = {
    "/v1/referrals/": "referral",
    "/v1/claims/": "claim",
    "/v1/contracts/": "contract",
    "/v1/payment-runs/": "payment_run",
}


@pytest.fixture(scope="module")
def fuzz_app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    # Runs the lifespan's shutdown in schemathesis's event loop: the engine is disposed there.
    asgi.shutdown_lifespans()


@pytest.fixture(params=list(ROLES))
def role(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def bearer(role: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token(**ROLES[role])}


@pytest.fixture
def real_ids(fuzz_app: FastAPI) -> dict[str, str]:
    """Contracts for P100 (JFS, SES), an accepted JFS referral, a started SES one with an
    attachment claim, and a payment run.

    Tables were emptied by the autouse ``_clean_tables`` fixture of conftest.
    """
    admin = {"Authorization": "Bearer " + token("admin")}
    jcp = {"Authorization": "Bearer " + token("jcp")}
    post = {"Authorization": "Bearer " + token("post")}
    # Lifecycle actions by someone other than the fuzzed provider user, who may then claim
    # (segregation of duties, GEN 122).
    provider = {"Authorization": "Bearer " + token("provider", sub="delivery-officer")}
    with asgi.get_client(fuzz_app) as client:

        def call(method: str, path: str, headers: dict[str, str], **kw: Any) -> dict[str, Any]:
            response: requests.Response = client.request(method, path, headers=headers, **kw)
            assert response.status_code in (200, 201), (path, response.text)
            body: dict[str, Any] = response.json()
            return body

        contract_body = {
            "provider_id": PROVIDER,
            "start_date": "2020-01-01",
            "end_date": "2035-12-31",
            "monthly_service_fee_pence": 1_000_000,
            "attachment_fee_pence": 50_000,
            "job_outcome_fee_pence": 100_000,
            "sustainment_fee_pence": 150_000,
        }
        contract = call("POST", "/v1/contracts", admin, json=contract_body | {"programme": "JFS"})
        call("POST", "/v1/contracts", admin, json=contract_body | {"programme": "SES"})
        referral = call("POST", "/v1/referrals", jcp, json=referral_body(nino=SEEDED_NINO))
        call("POST", f"/v1/referrals/{referral['id']}/accept", provider, json={})
        started = call(
            "POST", "/v1/referrals", jcp, json=referral_body(nino="CE123456D", programme="SES")
        )
        call("POST", f"/v1/referrals/{started['id']}/accept", provider, json={})
        call(
            "POST",
            f"/v1/referrals/{started['id']}/start",
            provider,
            json={"start_date": started["referral_date"]},
        )
        # An attachment claim, made by a claims clerk.
        claimer = {"Authorization": "Bearer " + token("provider", sub="claims-clerk")}
        claim = call(
            "POST",
            "/v1/claims",
            claimer,
            json={"referral_id": started["id"], "claim_type": "attachment"},
        )
        run = call("POST", "/v1/payment-runs", post, json={"month": started["referral_date"][:7]})
    return {
        "referral": referral["id"],
        "started_referral": started["id"],
        "claim": claim["id"],
        "contract": contract["id"],
        "payment_run": run["id"],
    }


def _real_id(path: str, ids: dict[str, str]) -> str | None:
    for prefix, kind in ID_KINDS.items():
        if path.startswith(prefix):
            return ids[kind]
    return None


def _with_real_references(body: dict[str, Any], ids: dict[str, str]) -> dict[str, Any] | None:
    """The body pointing at real objects, if it points at any: the started referral, provider
    P100, a seeded NINO to search for, a valid fresh NINO for a new participant, and no SCR
    flag. Gets claims, referrals and searches past the 404, ``no-contract``, the SCR refusal
    and the (deliberately undocumented) NINO check, so that the domain rules run."""
    real: dict[str, Any] = {
        "referral_id": ids["started_referral"],
        "provider_id": PROVIDER,
        "nino": SEEDED_NINO,
        "special_customer_record": False,
    }
    participant = body.get("participant")
    if not {"referral_id", "provider_id", "nino"} & body.keys() and participant is None:
        return None
    changed = body | {key: value for key, value in real.items() if key in body}
    if isinstance(participant, dict):
        changed["participant"] = participant | {"nino": f"AB{next(_NINOS):06d}C"}
    return changed


# Schema-valid data the server may still call invalid: rules across fields, which JSON
# Schema cannot state (the document says them in words). Nothing else.
CROSS_FIELD_RULES = (
    "met may not exceed eligible",  # CountsIn
    "months must be distinct and in ascending order",  # CalculateRequest.months
    "from..to: 1 to",  # getContractServiceCredits: from <= to, at most 36 months
    "end_date must not be before start_date",  # ContractCreate
    # A cursor the service did not issue: any string fits the schema, only issued ones are
    # accepted (api-contract.md: cursors are opaque and tamper-evident).
    "Invalid cursor.",
    # A webhook URL must resolve to public addresses only (api-contract.md, Webhooks): DNS,
    # which no schema can consult.
    "resolve only to public addresses",
)

_NINOS = itertools.count(1)
_KEYS = itertools.count()


def _send(case: schemathesis.Case, app: FastAPI, bearer: dict[str, str]) -> None:
    """Send the case as the role and run the checks. A valid generated ``Idempotency-Key`` is
    made unique per request: generation repeats keys, and a repeated key with another body
    is (rightly) ``idempotency-key-reused`` before anything else runs."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and is_valid_key(key):
        case.headers["Idempotency-Key"] = f"{next(_KEYS)}-{key}"[:MAX_KEY_LENGTH]
    response = case.call_and_validate(app=app, headers=bearer, checks=CHECKS)
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and response.status_code == 422 and response.json()["code"] == "validation-error":
        messages = [error["message"] for error in response.json().get("errors", [])]
        assert messages, (case.operation.label, response.text)
        assert all(any(rule in m for rule in CROSS_FIELD_RULES) for m in messages), (
            case.operation.label,
            response.text,
        )


@SCHEMA.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_fuzz(
    case: schemathesis.Case,
    fuzz_app: FastAPI,
    bearer: dict[str, str],
    real_ids: dict[str, str],
) -> None:
    _send(case, fuzz_app, bearer)
    real = _real_id(case.operation.path, real_ids)
    if real is not None and "id" in (case.path_parameters or {}):
        case.path_parameters["id"] = real
        _send(case, fuzz_app, bearer)
    if isinstance(case.body, dict) and (body := _with_real_references(case.body, real_ids)):
        case.body = body
        _send(case, fuzz_app, bearer)


NUL = "x\u0000"
COUNTS = {"eligible": 1, "met": 1}
ENDED = {"end_code": 37, "end_date": "2026-01-01", "last_engagement_date": "2026-01-01"}


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    [
        ("post", "GET", "/v1/referrals/%00", None),
        ("post", "GET", "/v1/referrals/%00/history", None),
        ("provider", "POST", "/v1/referrals/%00/accept", {}),
        ("post", "GET", "/v1/claims/%00", None),
        ("post", "GET", "/v1/claims?referral_id=%00", None),
        ("post", "GET", "/v1/contracts/%00", None),
        ("post", "GET", "/v1/contracts/%00/service-credits", None),
        ("post", "GET", "/v1/payment-runs/%00", None),
        ("provider", "POST", "/v1/referrals/{referral}/start", {"provider_reference": NUL}),
        (
            "provider",
            "POST",
            "/v1/referrals/{started_referral}/end",
            ENDED | {"policy_reference": NUL},
        ),
        ("provider", "POST", "/v1/referrals/{referral}/did-not-start", {"note": NUL}),
        ("post", "POST", "/v1/referrals/{started_referral}/back-out", {"reason": NUL}),
        ("provider", "POST", "/v1/claims", {"referral_id": NUL, "claim_type": "attachment"}),
        (
            "provider",
            "POST",
            "/v1/claims",
            {"claim_type": "job_outcome", "evidence_reference": NUL},
        ),
        ("post", "POST", "/v1/claims/{claim}/reject", {"reason": NUL}),
        (None, "POST", "/v1/sandbox/tokens", {"sub": NUL, "role": "jcp"}),
        ("post", "POST", "/v1/payment-runs", {"month": "0000-01"}),
        (
            "jcp",
            "POST",
            "/v1/service-credits/calculate",
            {
                "monthly_service_fee_pence": 1,
                "months": [{"month": "0000-01", "css1": COUNTS, "css2": COUNTS}],
            },
        ),
    ],
)
def test_fuzz_findings(
    fuzz_app: FastAPI,
    real_ids: dict[str, str],
    role: str | None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    """What schemathesis found, as plain cases (on PostgreSQL for the NUL ones): each was a
    500 and is a 422 ``validation-error``. A claim without a ``referral_id`` claims on the
    started referral."""
    headers = {"Authorization": "Bearer " + token(**ROLES[role])} if role else {}
    if path == "/v1/claims" and body is not None and "referral_id" not in body:
        body = body | {"referral_id": real_ids["started_referral"]}
    with asgi.get_client(fuzz_app) as client:
        response = client.request(method, path.format(**real_ids), headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "validation-error"
