"""The Special Customer Record refusal at the API boundary (domain.md §2; GEN 62-64, FND 21.3,
SES 3.30; api-contract.md, order of checks).

Any write whose JSON body says ``"special_customer_record": true`` at its top level is answered
422 ``special-customer-record`` before anything else: before authentication, authorisation,
schema validation, Idempotency-Key handling and routing. Nothing keeps any of the body: no
row in any table, no idempotency record, no log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import text

from tests.helpers import (
    ADMIN,
    JCP,
    POST,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    assert_problem,
    auth,
    create_referral,
    referral_body,
)
from tests.tables import MUTABLE_TABLES

# Values that appear nowhere but in the refused bodies: if any of them turns up in the
# database, a log line or a response, some of the body was kept.
SECRET_FORENAME = "Quixotic-Zanzibar-8841"
SECRET_SURNAME = "Vorpal-Snicker-5517"
SECRET_NINO = "JW918273B"
SECRET_NOTE = "scr-note-Xylophone-3062"
SECRET_KEY = "scr-idempotency-key-Marmalade-7734"
SECRET_CLOCK = "2031-07-04T12:34:56Z"
SECRETS = (
    SECRET_FORENAME,
    SECRET_SURNAME,
    SECRET_NINO,
    SECRET_NOTE,
    SECRET_KEY,
    "Marmalade",
    "2031-07-04",
)

UNKNOWN_ID = "01JZZZZZZZZZZZZZZZZZZZZZZZ"


# --- helpers -------------------------------------------------------------------------------


async def table_dump(app: FastAPI) -> dict[str, list[str]]:
    """Every row of every table a request could write to, as text."""
    dump: dict[str, list[str]] = {}
    async with app.state.engine.connect() as connection:
        for table in MUTABLE_TABLES:
            rows = (await connection.execute(text(f"SELECT * FROM {table}"))).all()
            dump[table] = [repr(tuple(row)) for row in rows]
    return dump


def assert_no_secret(where: str, haystack: str) -> None:
    for secret in SECRETS:
        assert secret not in haystack, f"{secret!r} found in {where}"


def scr_participant() -> dict[str, Any]:
    return {
        "title": "Mr",
        "forename": SECRET_FORENAME,
        "surname": SECRET_SURNAME,
        "nino": SECRET_NINO,
        "date_of_birth": "1970-01-01",
        "address": {"lines": ["7 Hidden Lane"], "postcode": "LS2 9JT"},
        "phone": "0113 496 0999",
    }


def scr_create_body() -> dict[str, Any]:
    body = referral_body(nino=SECRET_NINO)
    body["special_customer_record"] = True
    body["participant"] = scr_participant()
    body["details"] = {"aims": SECRET_NOTE}
    return body


# A target: (method, path, the headers a legitimate caller would send, a body that would be
# valid apart from the SCR flag, a body that is also invalid otherwise). ``{id}`` is replaced
# by an existing referral's id (or an unknown id).
Target = tuple[str, str, dict[str, str], dict[str, Any], dict[str, Any]]

TARGETS: dict[str, Target] = {
    "create-referral": (
        "POST",
        "/v1/referrals",
        JCP,
        scr_create_body(),
        {
            "special_customer_record": True,
            "programme": "NOPE",
            "participant": {"forename": SECRET_FORENAME, "nino": "ZZ" + SECRET_NINO},
            "unknown": SECRET_NOTE,
        },
    ),
    "accept-existing": (
        "POST",
        "/v1/referrals/{id}/accept",
        PROVIDER_A,
        {"special_customer_record": True, "note": SECRET_NOTE},
        {"special_customer_record": True, "forename": SECRET_FORENAME, "x": [SECRET_NOTE]},
    ),
    "reject-unknown-id": (
        "POST",
        f"/v1/referrals/{UNKNOWN_ID}/reject",
        PROVIDER_A,
        {"special_customer_record": True, "reason": "other", "note": SECRET_NOTE},
        {"special_customer_record": True, "reason": SECRET_NOTE},
    ),
    "start-existing": (
        "POST",
        "/v1/referrals/{id}/start",
        PROVIDER_A,
        {
            "special_customer_record": True,
            "start_date": "2026-03-02",
            "provider_reference": SECRET_NOTE,
        },
        {"special_customer_record": True, "start_date": SECRET_NOTE},
    ),
    "back-out-existing": (
        "POST",
        "/v1/referrals/{id}/back-out",
        POST,
        {"special_customer_record": True, "reason": SECRET_NOTE},
        {"special_customer_record": True},
    ),
    "create-contract": (
        "POST",
        "/v1/contracts",
        ADMIN,
        {
            "special_customer_record": True,
            "provider_id": "P900",
            "programme": "JFS",
            "start_date": "2020-01-01",
            "end_date": "2030-12-31",
            "monthly_service_fee_pence": 1000,
            "note": SECRET_NOTE,
        },
        {"special_customer_record": True, "provider_id": SECRET_NOTE, "programme": 42},
    ),
    "search": (
        "POST",
        "/v1/referrals/search",
        JCP,
        {"special_customer_record": True, "nino": SECRET_NINO},
        {"special_customer_record": True, "nino": "QQ" + SECRET_NOTE},
    ),
    "sandbox-clock": (
        "PUT",
        "/v1/sandbox/clock",
        {},
        {"special_customer_record": True, "now": SECRET_CLOCK},
        {"special_customer_record": True, "now": SECRET_NOTE},
    ),
    "unknown-path": (
        "POST",
        "/v1/no-such-endpoint",
        JCP,
        {"special_customer_record": True, "participant": scr_participant()},
        {"special_customer_record": True, "participant": SECRET_NOTE},
    ),
    "patch-referral": (
        "PATCH",
        "/v1/referrals/{id}",
        JCP,
        {"special_customer_record": True, "participant": scr_participant()},
        {"special_customer_record": True, "participant": SECRET_NOTE},
    ),
}

WRONG_ROLE: dict[str, dict[str, str]] = {
    "create-referral": PROVIDER_A,
    "accept-existing": JCP,
    "reject-unknown-id": POST,
    "start-existing": ADMIN,
    "back-out-existing": PROVIDER_A,
    "create-contract": PROVIDER_B,
    "search": ADMIN,
    "sandbox-clock": PROVIDER_A,
    "unknown-path": ADMIN,
    "patch-referral": ADMIN,
}

# A variant: how the request is sent, apart from the body: (headers, invalid body otherwise?).
VARIANTS = (
    "legitimate",
    "no-token",
    "bad-token",
    "basic-scheme",
    "wrong-role",
    "provider-without-scope",
    "invalid-body",
    "idempotency-key",
    "idempotency-key-invalid-body",
    "overlong-idempotency-key",
)


def variant_request(target: str, variant: str) -> tuple[dict[str, str], dict[str, Any]]:
    _method, _path, legitimate, valid_body, invalid_body = TARGETS[target]
    body = valid_body
    match variant:
        case "legitimate":
            headers = dict(legitimate)
        case "no-token":
            headers = {}
        case "bad-token":
            headers = {"Authorization": "Bearer not.a.valid-token"}
        case "basic-scheme":
            headers = {"Authorization": "Basic " + SECRET_NOTE}
        case "wrong-role":
            headers = dict(WRONG_ROLE[target])
        case "provider-without-scope":
            headers = auth("provider", scopes=())
        case "invalid-body":
            headers = dict(legitimate)
            body = invalid_body
        case "idempotency-key":
            headers = {**legitimate, "Idempotency-Key": SECRET_KEY}
        case "idempotency-key-invalid-body":
            headers = {**legitimate, "Idempotency-Key": SECRET_KEY}
            body = invalid_body
        case "overlong-idempotency-key":
            headers = {**legitimate, "Idempotency-Key": SECRET_KEY * 20}
        case _:
            raise AssertionError(variant)
    return headers, body


@pytest.fixture
def captured_logs(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> Callable[[], str]:
    """Everything logged from now on: std logging records (any level, any logger, with their
    structured payloads) and whatever structlog or a handler printed to stdout/stderr."""
    caplog.set_level(logging.DEBUG)

    def read() -> str:
        out, err = capsys.readouterr()
        records = [
            f"{r.name} {r.levelname} {r.msg!r} {r.args!r} {r.__dict__!r}" for r in caplog.records
        ]
        text = "\n".join([caplog.text, *records, out, err])
        caplog.clear()
        return text

    return read


async def _setup(client: AsyncClient, api: Api) -> str:
    """A clock, a contract and one referral (so that action paths hit a real referral)."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    referral = await create_referral(client)
    return str(referral["id"])


def assert_scr_refusal(response: Response) -> dict[str, Any]:
    body = assert_problem(response, 422, "special-customer-record")
    assert "SL2" in body["detail"], body
    assert "PRaP 11" in body["detail"], body
    assert "errors" not in body
    assert_no_secret("the response", response.text)
    assert_no_secret("the response headers", repr(response.headers))
    return body


# --- the refusal, whatever else is true of the request --------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("target", list(TARGETS))
async def test_scr_write_is_refused_first_and_nothing_is_kept(
    app: FastAPI,
    client: AsyncClient,
    api: Api,
    captured_logs: Callable[[], str],
    target: str,
    variant: str,
) -> None:
    referral_id = await _setup(client, api)
    before = await table_dump(app)
    captured_logs()  # drop what the setup logged
    method, path, *_ = TARGETS[target]
    headers, body = variant_request(target, variant)

    response = await client.request(method, path.format(id=referral_id), headers=headers, json=body)

    assert_scr_refusal(response)
    # Nothing written: every table exactly as before (no referral, no event, no contract,
    # no idempotency record, the sandbox clock unchanged), and no secret anywhere in them.
    after = await table_dump(app)
    assert after == before
    assert after["idempotency_records"] == []
    for table, rows in after.items():
        assert_no_secret(f"table {table}", "\n".join(rows))
    # No log line carries any of the body (nor the Idempotency-Key sent with it).
    logs = captured_logs()
    assert_no_secret("the logs", logs)
    # The referral the action targeted was not touched either.
    current = await client.get(f"/v1/referrals/{referral_id}", headers=JCP)
    assert current.json()["status"] == "referred"
    assert current.json()["version"] == 1


async def test_the_refusal_is_the_same_whoever_sends_it(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    referral_id = await _setup(client, api)
    bodies = []
    for target, (method, path, *_) in TARGETS.items():
        for variant in VARIANTS:
            headers, body = variant_request(target, variant)
            response = await client.request(
                method, path.format(id=referral_id), headers=headers, json=body
            )
            assert response.status_code == 422, (target, variant, response.text)
            bodies.append(response.json())
    assert all(b == bodies[0] for b in bodies), "the refusal differs between requests"
    assert bodies[0]["type"].endswith("special-customer-record")


async def test_the_access_log_is_captured_and_carries_no_body(
    client: AsyncClient, api: Api, captured_logs: Callable[[], str]
) -> None:
    """The log capture works (the request is logged) and the logged line is body-free."""
    await _setup(client, api)
    captured_logs()
    response = await client.post(
        "/v1/referrals", headers={**JCP, "Idempotency-Key": SECRET_KEY}, json=scr_create_body()
    )
    assert_scr_refusal(response)
    logs = captured_logs()
    assert "duration_ms" in logs, "the access log line was not captured: the check is void"
    assert "422" in logs
    # Nothing reached the database: not even a transaction was begun (SQLite's driver logs
    # every statement at DEBUG).
    assert "BEGIN" not in logs
    assert_no_secret("the logs", logs)


async def test_scr_with_non_json_content_type_is_still_refused(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    import json

    await _setup(client, api)
    before = await table_dump(app)
    response = await client.post(
        "/v1/referrals",
        headers={**JCP, "Content-Type": "text/plain"},
        content=json.dumps(scr_create_body()).encode(),
    )
    assert_scr_refusal(response)
    assert await table_dump(app) == before


async def test_scr_refusal_comes_before_a_replayed_idempotency_key(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    """A key already used (and stored) for a legitimate request: the SCR body with the same key
    is still refused at the boundary and the stored record is not touched."""
    await _setup(client, api)
    ok = await client.post(
        "/v1/referrals",
        headers={**JCP, "Idempotency-Key": "k-1"},
        json=referral_body(nino="AB111111A"),
    )
    assert ok.status_code == 201, ok.text
    before = await table_dump(app)
    response = await client.post(
        "/v1/referrals", headers={**JCP, "Idempotency-Key": "k-1"}, json=scr_create_body()
    )
    assert_scr_refusal(response)
    assert "idempotent-replayed" not in response.headers
    assert await table_dump(app) == before


# --- what is not refused -------------------------------------------------------------------


async def test_false_flag_is_not_refused(client: AsyncClient, api: Api) -> None:
    await _setup(client, api)
    body = referral_body(nino="AB222222A")
    body["special_customer_record"] = False
    response = await client.post("/v1/referrals", headers=JCP, json=body)
    assert response.status_code == 201, response.text


async def test_absent_flag_is_not_refused(client: AsyncClient, api: Api) -> None:
    await _setup(client, api)
    body = referral_body(nino="AB333333A")
    del body["special_customer_record"]
    response = await client.post("/v1/referrals", headers=JCP, json=body)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        pytest.param(
            "POST",
            "/v1/referrals",
            JCP,
            {**referral_body(), "markers": {"special_customer_record": True}},
            id="nested-in-create",
        ),
        pytest.param(
            "POST",
            "/v1/referrals/search",
            JCP,
            {"nino": "AB123456C", "filter": {"special_customer_record": True}},
            id="nested-in-search",
        ),
        pytest.param(
            "POST",
            "/v1/referrals",
            JCP,
            [{"special_customer_record": True}],
            id="inside-a-top-level-array",
        ),
        pytest.param(
            "POST",
            "/v1/referrals/{id}/accept",
            PROVIDER_A,
            {"special_customer_record": False},
            id="false-on-an-action",
        ),
    ],
)
async def test_not_top_level_true_is_not_an_scr_refusal(
    client: AsyncClient,
    api: Api,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
) -> None:
    """Not refused as SCR: the request goes on to the ordinary checks (here the schema)."""
    referral_id = await _setup(client, api)
    response = await client.request(method, path.format(id=referral_id), headers=headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation-error"


async def test_a_get_with_an_scr_body_is_not_a_write(client: AsyncClient, api: Api) -> None:
    """The refusal is about writes: a GET is answered as usual."""
    referral_id = await _setup(client, api)
    response = await client.request(
        "GET",
        f"/v1/referrals/{referral_id}",
        headers=JCP,
        json={"special_customer_record": True},
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("flag", ["true", 1, "yes", "on"])
async def test_truthy_non_boolean_flag_never_stores_an_scr_referral(
    app: FastAPI, client: AsyncClient, api: Api, flag: Any
) -> None:
    """A body that the service itself reads as ``special_customer_record = True`` must not be
    stored: it is either refused as SCR or rejected as invalid, never a 201."""
    await _setup(client, api)
    before = await table_dump(app)
    body = referral_body(nino="AB444444A")
    body["special_customer_record"] = flag
    response = await client.post("/v1/referrals", headers=JCP, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] in {"special-customer-record", "validation-error"}
    assert await table_dump(app) == before


async def test_a_delete_with_an_scr_body_is_refused(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    await _setup(client, api)
    before = await table_dump(app)
    response = await client.request(
        "DELETE", "/v1/sandbox/clock", json={"special_customer_record": True, "note": SECRET_NOTE}
    )
    assert_scr_refusal(response)
    assert await table_dump(app) == before
