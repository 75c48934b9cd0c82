"""Idempotency-Key on writes (api-contract.md, Writes).

Same key + same body + same caller within 24 hours: the first response again (status, body,
Location, ETag), marked ``idempotent-replayed: true``, nothing done twice. Same key with a
different body: 422 ``idempotency-key-reused``. A request while the first with that key is
still running: 409 ``idempotency-key-in-use``. Keys are per caller.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select, text, update

from app.core.auth import Principal, Role, mint_token
from app.idempotency.models import IdempotencyRecord
from app.idempotency.service import fingerprint
from tests.helpers import (
    JCP,
    POST,
    PROVIDER_A,
    PROVIDER_B,
    TEST_SECRET,
    Api,
    act,
    assert_problem,
    auth,
    create_referral,
    referral_body,
)

REPLAYED = "idempotent-replayed"


# --- helpers -------------------------------------------------------------------------------


async def count(app: FastAPI, table: str) -> int:
    async with app.state.engine.connect() as connection:
        return int((await connection.execute(text(f"SELECT COUNT(*) FROM {table}"))).scalar_one())


async def events_of(client: AsyncClient, referral_id: str) -> list[str]:
    response = await client.get(f"/v1/referrals/{referral_id}/history", headers=JCP)
    assert response.status_code == 200, response.text
    return [e["type"] for e in response.json()["items"]]


async def records(app: FastAPI) -> list[IdempotencyRecord]:
    async with app.state.sessions() as session:
        return list((await session.scalars(select(IdempotencyRecord))).all())


def caller_key(role: str, provider_id: str | None, sub: str) -> str:
    """The caller the service keys records by: the (role, provider, sub) tuple's digest."""
    return Principal(sub=sub, role=Role(role), provider_id=provider_id).caller_key


def raw(body: dict[str, Any]) -> bytes:
    """The exact bytes httpx sends for ``json=body`` (the fingerprint is over the bytes)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def post_raw(
    client: AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str]
) -> Response:
    return await client.post(
        path, content=raw(body), headers={**headers, "Content-Type": "application/json"}
    )


async def insert_record(
    app: FastAPI,
    *,
    caller: str,
    key: str,
    method: str,
    path: str,
    body: dict[str, Any],
    locked_until: datetime,
    created_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> None:
    """A reservation as the service leaves it while its request is running (``in_progress``)."""
    now = datetime.now(UTC)
    async with app.state.sessions() as session, session.begin():
        session.add(
            IdempotencyRecord(
                caller=caller,
                key=key,
                fingerprint=fingerprint(method, path, raw(body)),
                state="in_progress",
                created_at=created_at or now,
                locked_until=locked_until,
                expires_at=expires_at or now + timedelta(hours=24),
            )
        )


async def age_records(app: FastAPI, *, hours: float) -> None:
    """Make every stored key ``hours`` older (created and expiry both move back)."""
    async with app.state.sessions() as session, session.begin():
        for record in (await session.scalars(select(IdempotencyRecord))).all():
            await session.execute(
                update(IdempotencyRecord)
                .where(IdempotencyRecord.id == record.id)
                .values(
                    created_at=record.created_at - timedelta(hours=hours),
                    expires_at=record.expires_at - timedelta(hours=hours),
                    locked_until=record.locked_until - timedelta(hours=hours),
                )
            )


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def assert_same_response(first: Response, again: Response) -> None:
    assert again.status_code == first.status_code, again.text
    assert again.content == first.content
    for name in ("location", "etag", "content-type"):
        assert again.headers.get(name) == first.headers.get(name), name


@pytest.fixture
async def ready(api: Api) -> None:
    await api.set_today("2026-03-02")
    await api.create_contract()


# --- replays -------------------------------------------------------------------------------


@pytest.mark.usefixtures("ready")
async def test_create_replayed_returns_the_first_response_and_does_nothing_twice(
    app: FastAPI, client: AsyncClient
) -> None:
    body = referral_body()
    first = await client.post("/v1/referrals", headers=keyed(JCP, "create-1"), json=body)
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    assert first.headers["location"] == f"/v1/referrals/{first.json()['id']}"
    assert first.headers["etag"] == '"1"'

    for _ in range(3):
        again = await client.post("/v1/referrals", headers=keyed(JCP, "create-1"), json=body)
        assert_same_response(first, again)
        assert again.headers[REPLAYED] == "true"

    assert await count(app, "referrals") == 1
    assert await count(app, "referral_events") == 1
    assert await count(app, "idempotency_records") == 1
    assert await events_of(client, first.json()["id"]) == ["created"]


@pytest.mark.usefixtures("ready")
async def test_replay_is_by_caller_not_by_token(app: FastAPI, client: AsyncClient) -> None:
    """A fresh token for the same person (same role, provider and sub) is the same caller."""
    body = referral_body()
    first = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=body)
    assert first.status_code == 201, first.text
    fresh = mint_token(
        sub="jcp-user", role=Role.jcp, key=TEST_SECRET, lifetime=timedelta(minutes=17)
    )
    assert "Bearer " + fresh != JCP["Authorization"]
    again = await client.post(
        "/v1/referrals",
        headers={"Authorization": f"Bearer {fresh}", "Idempotency-Key": "k"},
        json=body,
    )
    assert_same_response(first, again)
    assert again.headers[REPLAYED] == "true"
    assert await count(app, "referrals") == 1


@pytest.mark.usefixtures("ready")
async def test_same_key_different_body_is_refused(app: FastAPI, client: AsyncClient) -> None:
    first = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=referral_body())
    assert first.status_code == 201, first.text
    other = await client.post(
        "/v1/referrals", headers=keyed(JCP, "k"), json=referral_body(nino="AB654321A")
    )
    body = assert_problem(other, 422, "idempotency-key-reused")
    assert "AB654321A" not in other.text
    assert REPLAYED not in other.headers
    assert "errors" not in body or body["errors"] is None or body["errors"] == []
    assert await count(app, "referrals") == 1
    # The original is still replayed afterwards.
    again = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=referral_body())
    assert_same_response(first, again)


@pytest.mark.usefixtures("ready")
async def test_same_key_on_another_path_is_a_different_request(
    app: FastAPI, client: AsyncClient
) -> None:
    one = await create_referral(client, nino="AB111111A")
    two = await create_referral(client, nino="AB222222A")
    first = await act(client, one["id"], "accept", headers=keyed(PROVIDER_A, "k"))
    assert first.status_code == 200, first.text
    other = await act(client, two["id"], "accept", headers=keyed(PROVIDER_A, "k"))
    assert_problem(other, 422, "idempotency-key-reused")
    assert (await client.get(f"/v1/referrals/{two['id']}", headers=JCP)).json()[
        "status"
    ] == "referred"


@pytest.mark.usefixtures("ready")
async def test_key_is_per_caller_other_sub(app: FastAPI, client: AsyncClient) -> None:
    first = await client.post("/v1/referrals", headers=keyed(JCP, "shared"), json=referral_body())
    assert first.status_code == 201, first.text
    other_jcp = auth("jcp", sub="another-work-coach")
    # A different body with the same key from someone else is not "reused": it is theirs.
    second = await client.post(
        "/v1/referrals", headers=keyed(other_jcp, "shared"), json=referral_body(nino="AB654321A")
    )
    assert second.status_code == 201, second.text
    assert REPLAYED not in second.headers
    assert second.json()["id"] != first.json()["id"]
    # The same body with the same key from someone else is done afresh, not replayed: here the
    # participant already has an open referral.
    third = await client.post(
        "/v1/referrals", headers=keyed(other_jcp, "again"), json=referral_body()
    )
    assert_problem(third, 409, "open-referral-exists")
    fourth = await client.post(
        "/v1/referrals",
        headers=keyed(auth("jcp", sub="third-coach"), "shared"),
        json=referral_body(),
    )
    assert_problem(fourth, 409, "open-referral-exists")
    assert REPLAYED not in fourth.headers
    assert await count(app, "referrals") == 2


@pytest.mark.usefixtures("ready")
async def test_key_is_per_caller_other_provider(
    app: FastAPI, api: Api, client: AsyncClient
) -> None:
    await api.create_contract(provider_id="P200")
    mine = await create_referral(client, nino="AB111111A")
    theirs = await create_referral(client, nino="AB222222A", provider_id="P200")
    a = await act(client, mine["id"], "accept", headers=keyed(PROVIDER_A, "same-key"))
    assert a.status_code == 200, a.text
    # Same key, same sub ("provider-user"), but another provider: a different caller.
    b = await act(client, theirs["id"], "accept", headers=keyed(PROVIDER_B, "same-key"))
    assert b.status_code == 200, b.text
    assert REPLAYED not in b.headers
    assert b.json()["id"] == theirs["id"]
    # And provider B replaying "its" key on A's referral is not served A's stored answer.
    c = await act(client, mine["id"], "accept", headers=keyed(PROVIDER_B, "other-key"))
    assert_problem(c, 404, "not-found")
    assert await count(app, "idempotency_records") == 3


@pytest.mark.usefixtures("ready")
async def test_a_provider_never_gets_another_providers_stored_answer(
    app: FastAPI, api: Api, client: AsyncClient
) -> None:
    """Same key, same path, same body, same sub, other provider: B gets its own answer (404,
    the referral is A's), never A's stored 200 with A's referral in it."""
    referral = await create_referral(client)
    a = await act(client, referral["id"], "accept", headers=keyed(PROVIDER_A, "k"))
    assert a.status_code == 200, a.text
    b = await act(client, referral["id"], "accept", headers=keyed(PROVIDER_B, "k"))
    assert_problem(b, 404, "not-found")
    assert "Byron" not in b.text
    assert REPLAYED not in b.headers


@pytest.mark.usefixtures("ready")
async def test_refused_first_answer_is_replayed(
    app: FastAPI, api: Api, client: AsyncClient
) -> None:
    """A 4xx changed nothing and is remembered: the retry gets the same 4xx, even if the
    world changed meanwhile (here: a contract now exists)."""
    body = referral_body(programme="SES")
    first = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=body)
    assert_problem(first, 422, "no-contract")
    await api.create_contract(programme="SES")
    again = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=body)
    assert_same_response(first, again)
    assert again.headers[REPLAYED] == "true"
    assert await count(app, "referrals") == 0
    # Without the key (or with a new one) the request is done afresh.
    fresh = await client.post("/v1/referrals", headers=keyed(JCP, "k2"), json=body)
    assert fresh.status_code == 201, fresh.text


@pytest.mark.usefixtures("ready")
async def test_refused_action_is_replayed(app: FastAPI, client: AsyncClient) -> None:
    referral = await create_referral(client)
    first = await act(
        client,
        referral["id"],
        "start",
        {"start_date": "2026-03-02"},
        headers=keyed(PROVIDER_A, "k"),
    )
    assert_problem(first, 409, "invalid-transition")
    assert (await act(client, referral["id"], "accept")).status_code == 200
    again = await act(
        client,
        referral["id"],
        "start",
        {"start_date": "2026-03-02"},
        headers=keyed(PROVIDER_A, "k"),
    )
    assert_same_response(first, again)
    assert again.headers[REPLAYED] == "true"
    assert await events_of(client, referral["id"]) == ["created", "accepted"]


@pytest.mark.usefixtures("ready")
async def test_forbidden_and_invalid_first_answers_are_replayed(
    app: FastAPI, client: AsyncClient
) -> None:
    forbidden = await client.post(
        "/v1/referrals", headers=keyed(PROVIDER_A, "k"), json=referral_body()
    )
    assert_problem(forbidden, 403, "forbidden")
    again = await client.post("/v1/referrals", headers=keyed(PROVIDER_A, "k"), json=referral_body())
    assert_same_response(forbidden, again)
    invalid_body = {"programme": "JFS"}
    invalid = await client.post("/v1/referrals", headers=keyed(JCP, "v"), json=invalid_body)
    assert_problem(invalid, 422, "validation-error")
    again = await client.post("/v1/referrals", headers=keyed(JCP, "v"), json=invalid_body)
    assert_same_response(invalid, again)
    assert again.headers[REPLAYED] == "true"
    assert await count(app, "referrals") == 0


@pytest.mark.usefixtures("ready")
async def test_unauthenticated_request_records_no_key(app: FastAPI, client: AsyncClient) -> None:
    response = await client.post(
        "/v1/referrals", headers={"Idempotency-Key": "k"}, json=referral_body()
    )
    assert_problem(response, 401, "unauthenticated")
    assert await count(app, "idempotency_records") == 0
    response = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=referral_body())
    assert response.status_code == 201, response.text
    assert REPLAYED not in response.headers


# --- actions -------------------------------------------------------------------------------


@pytest.mark.usefixtures("ready")
async def test_accept_twice_with_the_same_key(app: FastAPI, client: AsyncClient) -> None:
    referral = await create_referral(client)
    first = await act(client, referral["id"], "accept", headers=keyed(PROVIDER_A, "acc"))
    assert first.status_code == 200, first.text
    assert first.headers["etag"] == '"2"'
    second = await act(client, referral["id"], "accept", headers=keyed(PROVIDER_A, "acc"))
    assert_same_response(first, second)
    assert second.headers[REPLAYED] == "true"
    assert await events_of(client, referral["id"]) == ["created", "accepted"]
    current = (await client.get(f"/v1/referrals/{referral['id']}", headers=JCP)).json()
    assert current["version"] == 2
    # Without the key, accepting again is a new request, refused by the state machine.
    third = await act(client, referral["id"], "accept")
    assert_problem(third, 409, "invalid-transition")


@pytest.mark.usefixtures("ready")
async def test_post_action_with_a_key(app: FastAPI, api: Api, client: AsyncClient) -> None:
    referral = await create_referral(client)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    r = await act(client, referral["id"], "start", {"start_date": "2026-03-02"})
    assert r.status_code == 200, r.text
    body = {"reason": "recorded in error"}
    first = await act(client, referral["id"], "back-out", body, headers=keyed(POST, "bo"))
    assert first.status_code == 200, first.text
    second = await act(client, referral["id"], "back-out", body, headers=keyed(POST, "bo"))
    assert_same_response(first, second)
    assert (await events_of(client, referral["id"])).count("backed_out") == 1


# --- in flight, leases, expiry --------------------------------------------------------------


@pytest.mark.usefixtures("ready")
async def test_request_while_the_first_is_in_flight(app: FastAPI, client: AsyncClient) -> None:
    body = referral_body()
    await insert_record(
        app,
        caller=caller_key("jcp", None, "jcp-user"),
        key="busy",
        method="POST",
        path="/v1/referrals",
        body=body,
        locked_until=datetime.now(UTC) + timedelta(seconds=30),
    )
    response = await post_raw(client, "/v1/referrals", body, keyed(JCP, "busy"))
    assert_problem(response, 409, "idempotency-key-in-use")
    assert REPLAYED not in response.headers
    assert await count(app, "referrals") == 0
    # Still in flight: a second retry is refused the same way, and nothing is stored for it.
    response = await post_raw(client, "/v1/referrals", body, keyed(JCP, "busy"))
    assert_problem(response, 409, "idempotency-key-in-use")
    [record] = await records(app)
    assert record.state == "in_progress"
    assert record.response_status is None


@pytest.mark.usefixtures("ready")
async def test_in_flight_key_with_another_body_is_reused(app: FastAPI, client: AsyncClient) -> None:
    await insert_record(
        app,
        caller=caller_key("jcp", None, "jcp-user"),
        key="busy",
        method="POST",
        path="/v1/referrals",
        body=referral_body(),
        locked_until=datetime.now(UTC) + timedelta(seconds=30),
    )
    response = await post_raw(
        client, "/v1/referrals", referral_body(nino="AB654321A"), keyed(JCP, "busy")
    )
    assert_problem(response, 422, "idempotency-key-reused")


@pytest.mark.usefixtures("ready")
async def test_in_flight_key_of_another_caller_does_not_block(
    app: FastAPI, client: AsyncClient
) -> None:
    body = referral_body()
    await insert_record(
        app,
        caller=caller_key("jcp", None, "someone-else"),
        key="busy",
        method="POST",
        path="/v1/referrals",
        body=body,
        locked_until=datetime.now(UTC) + timedelta(seconds=30),
    )
    response = await post_raw(client, "/v1/referrals", body, keyed(JCP, "busy"))
    assert response.status_code == 201, response.text


@pytest.mark.usefixtures("ready")
async def test_in_flight_action_key(app: FastAPI, client: AsyncClient) -> None:
    referral = await create_referral(client)
    path = f"/v1/referrals/{referral['id']}/accept"
    await insert_record(
        app,
        caller=caller_key("provider", "P100", "provider-user"),
        key="busy",
        method="POST",
        path=path,
        body={},
        locked_until=datetime.now(UTC) + timedelta(seconds=30),
    )
    response = await post_raw(client, path, {}, keyed(PROVIDER_A, "busy"))
    assert_problem(response, 409, "idempotency-key-in-use")
    assert await events_of(client, referral["id"]) == ["created"]


@pytest.mark.usefixtures("ready")
async def test_expired_lease_is_taken_over(app: FastAPI, client: AsyncClient) -> None:
    """The first request died (its process was killed): after the lease, a retry runs."""
    body = referral_body()
    await insert_record(
        app,
        caller=caller_key("jcp", None, "jcp-user"),
        key="orphan",
        method="POST",
        path="/v1/referrals",
        body=body,
        created_at=datetime.now(UTC) - timedelta(minutes=5),
        locked_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    response = await post_raw(client, "/v1/referrals", body, keyed(JCP, "orphan"))
    assert response.status_code == 201, response.text
    assert REPLAYED not in response.headers
    [record] = await records(app)
    assert record.state == "completed"
    assert record.response_status == 201
    # And from now on it replays.
    again = await post_raw(client, "/v1/referrals", body, keyed(JCP, "orphan"))
    assert_same_response(response, again)
    assert again.headers[REPLAYED] == "true"
    assert await count(app, "referrals") == 1


@pytest.mark.usefixtures("ready")
async def test_key_older_than_a_day_is_forgotten(app: FastAPI, client: AsyncClient) -> None:
    body = referral_body()
    first = await client.post("/v1/referrals", headers=keyed(JCP, "old"), json=body)
    assert first.status_code == 201, first.text
    # Close the referral so that the same participant may be referred again.
    assert (await act(client, first.json()["id"], "reject", {"reason": "other"})).status_code == 200
    # Within the day: still replayed.
    await age_records(app, hours=23)
    again = await client.post("/v1/referrals", headers=keyed(JCP, "old"), json=body)
    assert_same_response(first, again)
    # Past 24 hours: forgotten, the request is done afresh (a new referral).
    await age_records(app, hours=1.5)
    fresh = await client.post("/v1/referrals", headers=keyed(JCP, "old"), json=body)
    assert fresh.status_code == 201, fresh.text
    assert REPLAYED not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    assert await count(app, "referrals") == 2
    # And a forgotten key may carry a different body without being "reused".
    await age_records(app, hours=25)
    other = await client.post(
        "/v1/referrals", headers=keyed(JCP, "old"), json=referral_body(nino="AB654321A")
    )
    assert other.status_code == 201, other.text


@pytest.mark.usefixtures("ready")
async def test_the_ttl_is_24_hours(app: FastAPI, client: AsyncClient) -> None:
    before = datetime.now(UTC)
    response = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=referral_body())
    assert response.status_code == 201, response.text
    [record] = await records(app)
    lifetime = record.expires_at - record.created_at
    assert (
        lifetime == timedelta(hours=app.state.settings.idempotency_ttl_hours) == timedelta(hours=24)
    )
    # Key time is real time, never the sandbox clock (which stands at 2026-03-02).
    assert before - timedelta(seconds=5) <= record.created_at <= datetime.now(UTC)


@pytest.mark.usefixtures("ready")
async def test_only_the_response_is_kept_not_the_request_body(
    app: FastAPI, client: AsyncClient
) -> None:
    response = await client.post("/v1/referrals", headers=keyed(JCP, "k"), json=referral_body())
    assert response.status_code == 201, response.text
    [record] = await records(app)
    assert len(record.fingerprint) == 64
    assert set(record.response_headers or {}) <= {"content-type", "location", "etag"}


# --- invalid keys ----------------------------------------------------------------------------


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize(
    "key",
    [
        pytest.param("k" * 256, id="256-chars"),
        pytest.param("x" * 1000, id="1000-chars"),
        pytest.param("", id="empty"),
    ],
)
async def test_invalid_key_is_a_validation_error(
    app: FastAPI, client: AsyncClient, key: str
) -> None:
    response = await client.post("/v1/referrals", headers=keyed(JCP, key), json=referral_body())
    assert_problem(response, 422, "validation-error")
    assert await count(app, "referrals") == 0
    assert await count(app, "idempotency_records") == 0


@pytest.mark.usefixtures("ready")
async def test_a_key_of_255_chars_is_fine(app: FastAPI, client: AsyncClient) -> None:
    key = "k" * 255
    first = await client.post("/v1/referrals", headers=keyed(JCP, key), json=referral_body())
    assert first.status_code == 201, first.text
    again = await client.post("/v1/referrals", headers=keyed(JCP, key), json=referral_body())
    assert_same_response(first, again)


@pytest.mark.usefixtures("ready")
async def test_invalid_key_on_an_action(app: FastAPI, client: AsyncClient) -> None:
    referral = await create_referral(client)
    response = await act(client, referral["id"], "accept", headers=keyed(PROVIDER_A, "k" * 256))
    assert_problem(response, 422, "validation-error")
    assert await events_of(client, referral["id"]) == ["created"]


@pytest.mark.usefixtures("ready")
async def test_invalid_key_comes_after_authentication(app: FastAPI, client: AsyncClient) -> None:
    response = await client.post(
        "/v1/referrals", headers={"Idempotency-Key": "k" * 256}, json=referral_body()
    )
    assert_problem(response, 401, "unauthenticated")


@pytest.mark.usefixtures("ready")
async def test_invalid_key_comes_after_authorisation(app: FastAPI, client: AsyncClient) -> None:
    """Order of checks: 403 (role) before 422 ``validation-error``."""
    response = await client.post(
        "/v1/referrals", headers=keyed(PROVIDER_A, "k" * 256), json=referral_body()
    )
    assert_problem(response, 403, "forbidden")
