"""The boundary holds (api-contract.md, The boundary; domain.md §2): every input an attacker
sent in the first attack run, replayed. None may answer 5xx, get past the SCR refusal, or make
the server hold more than 1 MiB of one request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import inspect, text

from app.core.auth import Principal, Role
from app.core.boundary import MAX_BODY_BYTES, MAX_JSON_DEPTH
from app.core.pagination import encode_cursor
from tests.core.test_scr_boundary import (
    SECRET_FORENAME,
    assert_no_secret,
    captured_logs,  # noqa: F401  (a fixture)
    scr_create_body,
)
from tests.helpers import ADMIN, JCP, PROVIDER_A, TEST_SECRET, Api, assert_problem, auth, token

JSON_BODY = {"content-type": "application/json"}

# Every write route of the service, with an id where the path needs one.
WRITE_ROUTES = (
    ("POST", "/v1/referrals"),
    ("POST", "/v1/referrals/search"),
    ("POST", "/v1/referrals/01JZZZZZZZZZZZZZZZZZZZZZZZ/accept"),
    ("POST", "/v1/referrals/01JZZZZZZZZZZZZZZZZZZZZZZZ/end"),
    ("POST", "/v1/claims"),
    ("POST", "/v1/payment-runs"),
    ("POST", "/v1/contracts"),
    ("POST", "/v1/service-credits/calculate"),
    ("POST", "/v1/jobs/auto-dna/runs"),
    ("PUT", "/v1/sandbox/clock"),
    ("DELETE", "/v1/sandbox/clock"),
)


async def every_row(app: FastAPI) -> str:
    """Every row of every table in the database, as one text."""
    async with app.state.engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        rows = []
        for table in tables:
            result = await connection.execute(text(f'SELECT * FROM "{table}"'))
            rows += [f"{table}: {tuple(row)!r}" for row in result.all()]
    return "\n".join(rows)


def signed_token(claims: dict[str, Any], key: str = TEST_SECRET) -> str:
    """An HS256 token whose claims JSON is written as given (``Infinity`` included), signed
    properly: only the service's own checks stand between it and the API."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    header = part(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = part(json.dumps(claims).encode())  # json.dumps writes inf as Infinity
    signature = hmac.new(key.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


# --- SCR: duplicates and bodies that are not JSON ------------------------------------------


@pytest.mark.parametrize(
    "raw_flags",
    [
        '"special_customer_record": true, "special_customer_record": false',
        '"special_customer_record": false, "special_customer_record": true',
        '"special_customer_record": false, "special_customer_record": true, '
        '"special_customer_record": false',
    ],
)
async def test_a_duplicated_scr_member_is_refused_if_either_says_true(
    app: FastAPI,
    client: AsyncClient,
    api: Api,
    captured_logs: Callable[[], str],  # noqa: F811
    raw_flags: str,
) -> None:
    """GEN 62-64: json.loads keeps the last duplicate, so `true, false` once stored an SCR
    customer. The contract: a body that names it twice is refused if either says true."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    body = scr_create_body()
    del body["special_customer_record"]
    raw = "{" + raw_flags + ", " + json.dumps(body)[1:]
    for headers in ({}, JCP):
        response = await client.post(
            "/v1/referrals", content=raw, headers={**headers, "content-type": "application/json"}
        )
        assert_problem(response, 422, "special-customer-record")
    assert_no_secret("the database", await every_row(app))
    assert_no_secret("the log", captured_logs())


@pytest.mark.parametrize(
    "raw",
    [
        '{"special_customer_record": true, "participant": {"forename": "%s"}}x',
        '{"special_customer_record": true, "participant": {"forename": "%s"},}',
        '{"special_customer_record":\n\ttrue "forename": "%s"',
        '["special_customer_record" : true, "%s"',
    ],
)
async def test_an_scr_body_that_is_not_json_is_still_refused_as_scr(
    app: FastAPI,
    client: AsyncClient,
    captured_logs: Callable[[], str],  # noqa: F811
    raw: str,
) -> None:
    """api-contract.md, The boundary: a body that is not valid JSON is refused as SCR when
    its text matches the pattern; it is not a validation-error."""
    content = (raw % SECRET_FORENAME).encode()
    for headers in ({}, JCP):
        response = await client.post("/v1/referrals", content=content, headers=headers)
        assert_problem(response, 422, "special-customer-record")
    assert_no_secret("the database", await every_row(app))
    assert_no_secret("the log", captured_logs())


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-16-be"])
async def test_an_scr_body_in_another_unicode_encoding_is_refused(
    client: AsyncClient, encoding: str
) -> None:
    """RFC 8259 JSON may come as UTF-16 or UTF-32; the SCR refusal reads it all the same."""
    content = json.dumps(scr_create_body()).encode(encoding)
    assert_problem(
        await client.post("/v1/referrals", content=content), 422, "special-customer-record"
    )
    broken = (json.dumps(scr_create_body()) + " x").encode(encoding)
    assert_problem(
        await client.post("/v1/referrals", content=broken), 422, "special-customer-record"
    )


async def test_an_scr_body_nested_too_deep_is_refused_as_scr(client: AsyncClient) -> None:
    body = b'{"special_customer_record": true, "x": ' + nested(5000) + b"}"
    assert_problem(await client.post("/v1/referrals", content=body), 422, "special-customer-record")


async def test_a_false_or_nested_flag_is_not_refused(client: AsyncClient, api: Api) -> None:
    """Only a top-level true refuses: `false`, a nested member and text in a string pass."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    body = scr_create_body()
    body["special_customer_record"] = False
    body["details"] = {"aims": '"special_customer_record": true'}
    body["markers"] = {"mappa": False}
    response = await client.post("/v1/referrals", json=body, headers=JCP)
    assert response.status_code == 201, response.text


# --- nesting ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), WRITE_ROUTES)
async def test_json_nested_a_thousand_deep_is_never_a_500(
    client: AsyncClient,
    captured_logs: Callable[[], str],  # noqa: F811
    method: str,
    path: str,
) -> None:
    """The first attack run got a RecursionError (500, a 4 KB traceback) on every write route,
    without a token. Now: 401 without a token, 422 with one (deeper than 32 levels)."""
    sandbox = path.startswith("/v1/sandbox")  # no token needed there
    for depth in (1000, 100_000):
        anonymous = await client.request(method, path, content=nested(depth))
        assert anonymous.status_code < 500, anonymous.text
        if not sandbox:
            assert_problem(anonymous, 401, "unauthenticated")
        with_token = await client.request(
            method, path, content=nested(depth), headers={**ADMIN, **JSON_BODY}
        )
        assert with_token.status_code < 500, with_token.text
        if method != "DELETE":  # DELETE takes no body
            assert with_token.status_code in (403, 404, 422), with_token.text
    assert "Traceback" not in captured_logs()


async def test_nesting_up_to_32_levels_is_json_and_deeper_is_a_validation_error(
    client: AsyncClient,
) -> None:
    """api-contract.md, The boundary: JSON nested deeper than 32 levels is 422."""
    path = "/v1/service-credits/calculate"
    headers = {**JCP, **JSON_BODY}
    at_limit = await client.post(path, content=nested(MAX_JSON_DEPTH), headers=headers)
    body = assert_problem(at_limit, 422, "validation-error")
    assert "nested" not in json.dumps(body["errors"])  # parsed: the schema said no
    too_deep = await client.post(path, content=nested(MAX_JSON_DEPTH + 1), headers=headers)
    body = assert_problem(too_deep, 422, "validation-error")
    assert body["errors"] == [
        {"field": "body", "message": "The body is nested deeper than 32 levels."}
    ]
    arrays = b"[" * 33 + b"]" * 33
    response = await client.post(path, content=arrays, headers=headers)
    assert_problem(response, 422, "validation-error")


async def test_nan_and_infinity_are_not_json(client: AsyncClient) -> None:
    for raw in (b'{"monthly_service_fee_pence": NaN}', b'{"x": Infinity}', b"-Infinity"):
        response = await client.post(
            "/v1/service-credits/calculate", content=raw, headers={**JCP, **JSON_BODY}
        )
        body = assert_problem(response, 422, "validation-error")
        assert body["errors"][0]["message"] == "The body is not valid JSON."


# --- size ---------------------------------------------------------------------------------


class Body:
    """An ASGI ``receive`` that counts what the app read of a body sent in chunks."""

    def __init__(self, chunks: int, chunk_size: int = 64 * 1024) -> None:
        self.left = chunks
        self.chunk = b" " * chunk_size
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        if self.left == 0:
            return {"type": "http.disconnect"}
        self.left -= 1
        self.read += len(self.chunk)
        return {"type": "http.request", "body": self.chunk, "more_body": self.left > 0}


async def call(app: FastAPI, receive: Body, headers: list[tuple[bytes, bytes]]) -> list[Any]:
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/referrals",
        "raw_path": b"/v1/referrals",
        "query_string": b"",
        "headers": [(b"host", b"prap.test"), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("prap.test", 80),
    }
    await app(scope, receive, send)
    return sent


async def test_an_oversized_content_length_is_413_before_a_byte_is_read(app: FastAPI) -> None:
    """api-contract.md: 413 is decided from Content-Length before the body is read: four
    100 MB uploads once took the server from 136 MB to 623 MB."""
    body = Body(chunks=1600)  # 100 MiB, if anyone read it
    sent = await call(app, body, [(b"content-length", str(100 * 1024 * 1024).encode())])
    assert sent[0]["status"] == 413
    assert body.read == 0
    assert json.loads(sent[1]["body"])["code"] == "payload-too-large"


async def test_a_chunked_body_is_cut_off_at_1_mib(app: FastAPI) -> None:
    body = Body(chunks=1600)
    sent = await call(app, body, [(b"transfer-encoding", b"chunked")])
    assert sent[0]["status"] == 413
    assert body.read <= MAX_BODY_BYTES + body.chunk.__len__()


async def test_a_413_comes_before_the_scr_refusal_and_authentication(
    client: AsyncClient,
) -> None:
    padding = "x" * MAX_BODY_BYTES
    body = json.dumps({"special_customer_record": True, "pad": padding})
    assert_problem(await client.post("/v1/referrals", content=body), 413, "payload-too-large")


# --- cursors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parameter", "role"),
    [
        ("/v1/events", "after", "jcp"),
        ("/v1/jobs/runs", "cursor", "admin"),
        ("/v1/referrals", "cursor", "jcp"),
        ("/v1/claims", "cursor", "post"),
        ("/v1/contracts", "cursor", "admin"),
        ("/v1/payment-runs", "cursor", "post"),
    ],
)
async def test_a_forged_or_altered_cursor_is_a_422_and_never_reaches_sql(
    client: AsyncClient, path: str, parameter: str, role: str
) -> None:
    """api-contract.md, The boundary: cursors are tamper-evident. The first attack run got a
    500 from integers beyond 64 bits in a hand-made cursor."""

    def unsigned(values: list[Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")

    genuine = encode_cursor(2**40, 7)
    payload, _, signature = genuine.partition(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = [
        unsigned([2**64, 2**65]),
        unsigned([10**30]),
        unsigned(["01J"]),
        f"{unsigned([2**64, 1])}.{signature}",
        f"{payload}.{flipped}",
        f"{payload}.",
        ".",
        "not base64 at all!",
        "\u00e9",
    ]
    for cursor in forged:
        response = await client.get(path, params={parameter: cursor}, headers=auth(role))
        assert_problem(response, 422, "validation-error")


def test_cursors_round_trip_and_reject_values_beyond_64_bits() -> None:
    from app.core.pagination import decode_cursor
    from app.core.problems import ValidationProblem

    assert decode_cursor(encode_cursor(5, 6), int, int) == (5, 6)
    with pytest.raises(ValidationProblem):
        decode_cursor(encode_cursor(2**63), int)
    with pytest.raises(ValidationProblem):
        decode_cursor(encode_cursor(True), int)


# --- tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": float("inf")},
        {"exp": float("-inf")},
        {"exp": float("nan")},
        {"exp": "tomorrow"},
        {"exp": None},
        {"iat": float("inf")},
        {"nbf": float("nan")},
        {"aud": ["prap", float("inf")]},
        {"sub": 7},
        {"role": ["admin"]},
        {"provider_id": "P100|Z"},
        {"provider_id": "P" * 33},
        {"provider_id": "P 100"},
        {"provider_id": ""},
        {"provider_id": 100},
        {"scope": ["referrals"]},
    ],
)
async def test_a_signed_token_with_bad_claims_is_401(
    client: AsyncClient, claims: dict[str, Any]
) -> None:
    """api-contract.md, Authentication: a malformed token is 401, never 500 (`exp: Infinity`
    was a 500), and a provider_id is 1-32 characters of A-Z a-z 0-9 _ -."""
    base = {
        "sub": "adviser",
        "role": "provider",
        "provider_id": "P100",
        "scope": "referrals",
        "aud": "prap",
        "exp": 4102444800,
    }
    forged = signed_token({**base, **claims})
    response = await client.get("/v1/referrals", headers={"Authorization": f"Bearer {forged}"})
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("exp", [4102444800, 1e308, 10**30])
async def test_the_same_token_with_good_claims_is_accepted(client: AsyncClient, exp: float) -> None:
    """A finite expiry, however far off, is an expiry (the token is ours: it is signed)."""
    claims = {
        "sub": "adviser",
        "role": "provider",
        "provider_id": "P-1_00",
        "scope": "referrals",
        "aud": "prap",
        "exp": exp,
    }
    forged = signed_token(claims)
    response = await client.get("/v1/referrals", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 200, response.text


# --- idempotency identity -------------------------------------------------------------------


def test_the_idempotency_identity_is_an_unambiguous_tuple() -> None:
    """Under `role|provider_id|sub`, provider `P100|Z` with sub `q` and provider `P100` with
    sub `Z|q` were one caller. As a tuple they never are."""
    a = Principal(sub="q", role=Role.provider, provider_id="P100|Z")
    b = Principal(sub="Z|q", role=Role.provider, provider_id="P100")
    c = Principal(sub="|", role=Role.jcp)
    d = Principal(sub="", role=Role.jcp, provider_id="|")
    assert len({a.caller_key, b.caller_key, c.caller_key, d.caller_key}) == 4


async def test_the_collision_of_the_attack_run_cannot_replay(client: AsyncClient, api: Api) -> None:
    """Another provider's stored answer (with its participant's data) is never replayed."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    victim = auth("provider", sub="Z|q", provider_id="P100")
    search = {"nino": "AB123456C"}
    key = {"Idempotency-Key": "k-1"}
    first = await client.post("/v1/referrals/search", json=search, headers={**victim, **key})
    assert first.status_code == 200
    claims = {
        "sub": "q",
        "role": "provider",
        "provider_id": "P100|Z",
        "scope": "referrals",
        "aud": "prap",
        "exp": 4102444800,
    }
    attacker = {"Authorization": f"Bearer {signed_token(claims)}", **key}
    response = await client.post("/v1/referrals/search", json=search, headers=attacker)
    assert_problem(response, 401, "unauthenticated")
    assert "idempotent-replayed" not in response.headers
    # And a caller of another name, however spelt, runs the request afresh.
    other = auth("provider", sub="q", provider_id="P100")
    again = await client.post("/v1/referrals/search", json=search, headers={**other, **key})
    assert again.status_code == 200
    assert "idempotent-replayed" not in again.headers


# --- the sandbox clock ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "now",
    [
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "2100-01-01T00:00:00Z",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2026-03-02T09:00:00",
        "2026-03-02",
        "2026-02-30T09:00:00Z",
        0,
        1772442000,
        1e300,
        None,
        True,
        ["2026-03-02T09:00:00Z"],
    ],
)
async def test_the_sandbox_clock_takes_only_what_the_contract_allows(
    client: AsyncClient, now: Any
) -> None:
    """api-contract.md, Sandbox: an RFC 3339 date-time with an offset, 2000-2099; anything
    else, a number included, is 422 (`0001-01-01T00:00:00Z` was a 500)."""
    response = await client.put("/v1/sandbox/clock", json={"now": now})
    assert_problem(response, 422, "validation-error")


async def test_the_sandbox_clock_takes_its_range_ends(client: AsyncClient) -> None:
    for now in ("2000-01-01T00:00:00Z", "2099-12-31T23:59:59+00:00", "2026-03-02T09:00:00+01:00"):
        response = await client.put("/v1/sandbox/clock", json={"now": now})
        assert response.status_code == 200, response.text


# --- headers ---------------------------------------------------------------------------------


async def test_every_api_answer_is_nosniff_and_not_stored(client: AsyncClient, api: Api) -> None:
    """api-contract.md, The boundary: nosniff everywhere; no-store on every answer of an
    operation that can return personal data, whatever it returned this time."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    created = await client.post(
        "/v1/referrals",
        json={
            "programme": "JFS",
            "provider_id": "P100",
            "participant": {"forename": "A", "surname": "B", "nino": "AB123456C"},
        },
        headers=JCP,
    )
    referral_id = created.json()["id"]
    answers = [
        created,
        await client.get(f"/v1/referrals/{referral_id}", headers=PROVIDER_A),
        await client.get(f"/v1/referrals/{referral_id}/history", headers=JCP),
        await client.get("/v1/referrals", headers=JCP),
        await client.post("/v1/referrals/search", json={"nino": "AB123456C"}, headers=JCP),
        await client.get("/v1/claims", headers=PROVIDER_A),
        await client.get("/v1/referrals/01JZZZZZZZZZZZZZZZZZZZZZZZ", headers=JCP),  # 404
        await client.get("/v1/referrals"),  # 401
    ]
    for response in answers:
        assert response.headers["cache-control"] == "no-store", response.request.url
        assert response.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/healthz")).headers["x-content-type-options"] == "nosniff"


async def test_401_names_bearer_and_405_lists_allow(client: AsyncClient) -> None:
    """RFC 9110 §11.6.1 and §15.5.6; api-contract.md, Errors."""
    missing = await client.get("/v1/referrals")
    assert_problem(missing, 401, "unauthenticated")
    assert missing.headers["www-authenticate"] == "Bearer"
    expired = await client.get(
        "/v1/referrals", headers={"Authorization": "Bearer " + token("jcp") + "x"}
    )
    assert expired.headers["www-authenticate"] == "Bearer"
    wrong = await client.put("/v1/referrals", headers=JCP)
    assert_problem(wrong, 405, "method-not-allowed")
    assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
