"""Races and optimistic concurrency (api-contract.md, Writes).

Real concurrent requests: several requests in flight at once through the same ASGI app, each
with its own database session and connection (the unit-of-work middleware opens one per
request). Two conflicting actions on one referral: exactly one wins, the others get 409 and
the history has exactly one event for the winner. ETag / If-Match: a stale version is 412.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text

from tests.helpers import (
    JCP,
    POST,
    PROVIDER_A,
    Api,
    InFlight,
    act,
    assert_problem,
    auth,
    create_referral,
    referral_body,
)

ROUNDS = 4


@pytest.fixture
def in_flight(app: FastAPI) -> InFlight:
    return InFlight(app)


@pytest.fixture
async def client(in_flight: InFlight) -> Any:
    """This module's client goes through the in-flight counter."""
    transport = ASGITransport(app=in_flight)
    async with AsyncClient(transport=transport, base_url="http://prap.test") as c:
        yield c


@pytest.fixture
def api(client: AsyncClient) -> Api:
    return Api(client)


# --- helpers -------------------------------------------------------------------------------


async def together(in_flight: InFlight, *calls: Awaitable[Response]) -> list[Response]:
    """Send every request at once, wait for all of them, and check that they overlapped."""
    in_flight.peak = 0
    responses = list(await asyncio.gather(*calls))
    assert in_flight.peak >= 2, "the requests did not overlap: the race was not run"
    return responses


async def count(app: FastAPI, table: str, where: str = "", **params: Any) -> int:
    sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
    async with app.state.engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def history(client: AsyncClient, referral_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/referrals/{referral_id}/history", headers=JCP)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def referral(client: AsyncClient, referral_id: str) -> Response:
    response = await client.get(f"/v1/referrals/{referral_id}", headers=JCP)
    assert response.status_code == 200, response.text
    return response


def one_winner(responses: list[Response]) -> int:
    """Exactly one 200; every other answer 409 ``invalid-transition``. The winner's index."""
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, [(r.status_code, r.text) for r in responses]
    for r in responses:
        if r.status_code != 200:
            assert_problem(r, 409, "invalid-transition")
    return statuses.index(200)


@pytest.fixture
async def ready(api: Api) -> None:
    await api.set_today("2026-03-02")
    await api.create_contract()


def provider(n: int) -> dict[str, str]:
    """Several people of provider P100 (distinct subs), as on a busy caseload."""
    return auth("provider", sub=f"adviser-{n}", provider_id="P100")


# --- conflicting actions ---------------------------------------------------------------------


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_accept_versus_reject(
    in_flight: InFlight, app: FastAPI, client: AsyncClient, round_: int
) -> None:
    r = await create_referral(client)
    calls = []
    for n in range(3):
        calls.append(act(client, r["id"], "accept", headers=provider(2 * n)))
        calls.append(
            act(client, r["id"], "reject", {"reason": "other"}, headers=provider(2 * n + 1))
        )
    if round_ % 2:
        calls.reverse()
    responses = await together(in_flight, *calls)
    winner = responses[one_winner(responses)]
    status = winner.json()["status"]
    assert status in {"accepted", "rejected"}
    events = await history(client, r["id"])
    assert [e["type"] for e in events] == ["created", status]
    assert events[-1]["version"] == winner.json()["version"] == 2
    current = await referral(client, r["id"])
    assert current.json()["status"] == status
    assert current.json()["version"] == 2
    assert current.headers["etag"] == winner.headers["etag"] == '"2"'


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_start_twice(
    in_flight: InFlight, app: FastAPI, api: Api, client: AsyncClient, round_: int
) -> None:
    r = await create_referral(client)
    assert (await act(client, r["id"], "accept")).status_code == 200
    await api.set_today("2026-03-04")
    responses = await together(
        in_flight,
        act(client, r["id"], "start", {"start_date": "2026-03-03"}, headers=provider(1)),
        act(client, r["id"], "start", {"start_date": "2026-03-04"}, headers=provider(2)),
        act(client, r["id"], "start", {"start_date": "2026-03-02"}, headers=provider(3)),
    )
    index = one_winner(responses)
    winner = responses[index].json()
    events = await history(client, r["id"])
    assert [e["type"] for e in events] == ["created", "accepted", "started"]
    assert events[-1]["start_date"] == winner["start_date"]
    assert events[-1]["actor"]["sub"] == f"adviser-{index + 1}"
    assert (await referral(client, r["id"])).json()["start_date"] == winner["start_date"]


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_end_versus_back_out(
    in_flight: InFlight, app: FastAPI, api: Api, client: AsyncClient, round_: int
) -> None:
    r = await create_referral(client)
    assert (await act(client, r["id"], "accept")).status_code == 200
    assert (await act(client, r["id"], "start", {"start_date": "2026-03-02"})).status_code == 200
    await api.set_today("2026-03-10")
    end = {"end_code": 1, "end_date": "2026-03-09", "last_engagement_date": "2026-03-09"}
    calls = [
        act(client, r["id"], "end", end, headers=provider(1)),
        act(client, r["id"], "back-out", {"reason": "recorded in error"}, headers=POST),
        act(client, r["id"], "end", end, headers=provider(2)),
        act(client, r["id"], "back-out", {"reason": "again"}, headers=auth("post", sub="ost-2")),
    ]
    if round_ % 2:
        calls.reverse()
    responses = await together(in_flight, *calls)
    winner = responses[one_winner(responses)].json()
    assert winner["status"] in {"ended", "accepted"}
    expected = "ended" if winner["status"] == "ended" else "backed_out"
    events = await history(client, r["id"])
    assert [e["type"] for e in events] == ["created", "accepted", "started", expected]
    current = (await referral(client, r["id"])).json()
    assert current["status"] == winner["status"]
    assert current["version"] == 4


@pytest.mark.usefixtures("ready")
async def test_many_referrals_each_with_one_winner(
    in_flight: InFlight, app: FastAPI, client: AsyncClient
) -> None:
    """Several races at once, on different referrals: each resolves on its own."""
    referrals = [await create_referral(client, nino=f"AB{n:06d}A") for n in range(1, 6)]
    calls = []
    for r in referrals:
        calls.append(act(client, r["id"], "acknowledge", headers=provider(1)))
        calls.append(act(client, r["id"], "accept", headers=provider(2)))
        calls.append(act(client, r["id"], "reject", {"reason": "duplicate"}, headers=provider(3)))
    responses = await together(in_flight, *calls)
    for i, r in enumerate(referrals):
        mine = responses[3 * i : 3 * i + 3]
        statuses = sorted(x.status_code for x in mine)
        # acknowledge then accept may both succeed (accept is allowed from acknowledged);
        # every other pair conflicts.
        events = [e["type"] for e in await history(client, r["id"])]
        assert events[0] == "created"
        assert len(events) - 1 == statuses.count(200)
        assert events[1:] in (
            ["acknowledged"],
            ["accepted"],
            ["rejected"],
            ["acknowledged", "accepted"],
            ["acknowledged", "rejected"],
        ), events
        for x in mine:
            if x.status_code != 200:
                assert_problem(x, 409, "invalid-transition")
    assert await count(app, "referral_events") == 5 + sum(
        1 for x in responses if x.status_code == 200
    )


# --- concurrent creates ----------------------------------------------------------------------


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_concurrent_creates_for_one_participant(
    in_flight: InFlight, app: FastAPI, client: AsyncClient, round_: int
) -> None:
    coaches = [auth("jcp", sub=f"coach-{n}") for n in range(5)]
    responses = await together(
        in_flight, *(client.post("/v1/referrals", headers=h, json=referral_body()) for h in coaches)
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 4}, [(r.status_code, r.text) for r in responses]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "open-referral-exists")
    assert await count(app, "referrals") == 1
    assert await count(app, "referral_events") == 1


@pytest.mark.usefixtures("ready")
async def test_concurrent_creates_differently_spelt_nino(
    in_flight: InFlight, app: FastAPI, client: AsyncClient
) -> None:
    """The same participant with the NINO spelt differently is still one participant."""
    spellings = ["AB123456C", "ab123456c", "AB 12 34 56 C", "ab 123456 c"]
    responses = await together(
        in_flight,
        *(client.post("/v1/referrals", headers=JCP, json=referral_body(nino=n)) for n in spellings),
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 3}
    assert await count(app, "referrals") == 1


@pytest.mark.usefixtures("ready")
async def test_concurrent_creates_other_programme_both_succeed(
    in_flight: InFlight, app: FastAPI, api: Api, client: AsyncClient
) -> None:
    await api.create_contract(programme="SES")
    responses = await together(
        in_flight,
        client.post("/v1/referrals", headers=JCP, json=referral_body(programme="JFS")),
        client.post("/v1/referrals", headers=JCP, json=referral_body(programme="SES")),
    )
    assert [r.status_code for r in responses] == [201, 201]
    assert await count(app, "referrals") == 2


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("round_", range(ROUNDS))
async def test_concurrent_creates_with_one_idempotency_key(
    in_flight: InFlight, app: FastAPI, client: AsyncClient, round_: int
) -> None:
    body = referral_body()
    headers = {**JCP, "Idempotency-Key": f"race-{round_}"}
    responses = await together(
        in_flight, *(client.post("/v1/referrals", headers=headers, json=body) for _ in range(5))
    )
    created = [r for r in responses if r.status_code == 201]
    assert created, [(r.status_code, r.text) for r in responses]
    for r in responses:
        if r.status_code != 201:
            assert_problem(r, 409, "idempotency-key-in-use")
    # Every 201 is the same referral (the first, or a replay of it).
    assert len({r.json()["id"] for r in created}) == 1
    assert sum(1 for r in created if "idempotent-replayed" not in r.headers) == 1
    assert await count(app, "referrals") == 1
    assert await count(app, "referral_events") == 1
    assert await count(app, "idempotency_records") == 1
    # Once settled, a retry is a replay.
    again = await client.post("/v1/referrals", headers=headers, json=body)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == created[0].json()["id"]


@pytest.mark.usefixtures("ready")
async def test_concurrent_accepts_with_one_idempotency_key(
    in_flight: InFlight, app: FastAPI, client: AsyncClient
) -> None:
    r = await create_referral(client)
    headers = {**PROVIDER_A, "Idempotency-Key": "acc"}
    responses = await together(
        in_flight, *(act(client, r["id"], "accept", headers=headers) for _ in range(4))
    )
    for x in responses:
        if x.status_code != 200:
            assert_problem(x, 409, "idempotency-key-in-use")
    assert any(x.status_code == 200 for x in responses)
    assert [e["type"] for e in await history(client, r["id"])] == ["created", "accepted"]


# --- ETag and If-Match -----------------------------------------------------------------------


@pytest.mark.usefixtures("ready")
async def test_etag_is_the_version(client: AsyncClient) -> None:
    created = await client.post("/v1/referrals", headers=JCP, json=referral_body())
    assert created.headers["etag"] == '"1"'
    rid = created.json()["id"]
    got = await referral(client, rid)
    assert got.headers["etag"] == f'"{got.json()["version"]}"' == '"1"'
    acted = await act(client, rid, "acknowledge")
    assert acted.headers["etag"] == f'"{acted.json()["version"]}"' == '"2"'
    assert (await referral(client, rid)).headers["etag"] == '"2"'


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("stale", ['"1"', '"0"', '"99"', "1", 'W/"1"', '"1", "3"'])
async def test_stale_if_match_is_refused(app: FastAPI, client: AsyncClient, stale: str) -> None:
    r = await create_referral(client)
    assert (await act(client, r["id"], "acknowledge")).status_code == 200  # version 2
    before = await referral(client, r["id"])
    response = await client.post(
        f"/v1/referrals/{r['id']}/accept", headers={**PROVIDER_A, "If-Match": stale}, json={}
    )
    assert_problem(response, 412, "precondition-failed")
    after = await referral(client, r["id"])
    assert after.json() == before.json()
    assert after.headers["etag"] == '"2"'
    assert [e["type"] for e in await history(client, r["id"])] == ["created", "acknowledged"]


@pytest.mark.usefixtures("ready")
@pytest.mark.parametrize("current", ['"2"', "*", '"1", "2"'])
async def test_current_if_match_is_accepted(client: AsyncClient, current: str) -> None:
    r = await create_referral(client)
    assert (await act(client, r["id"], "acknowledge")).status_code == 200  # version 2
    response = await client.post(
        f"/v1/referrals/{r['id']}/accept", headers={**PROVIDER_A, "If-Match": current}, json={}
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"3"'
    assert response.json()["status"] == "accepted"


@pytest.mark.usefixtures("ready")
async def test_if_match_from_a_get_then_a_stale_retry(client: AsyncClient) -> None:
    """The usual lost-update guard: read, act with the ETag read, act again with it: 412."""
    r = await create_referral(client)
    etag = (await referral(client, r["id"])).headers["etag"]
    first = await client.post(
        f"/v1/referrals/{r['id']}/acknowledge", headers={**PROVIDER_A, "If-Match": etag}, json={}
    )
    assert first.status_code == 200, first.text
    second = await client.post(
        f"/v1/referrals/{r['id']}/reject",
        headers={**PROVIDER_A, "If-Match": etag},
        json={"reason": "other"},
    )
    assert_problem(second, 412, "precondition-failed")
    assert (await referral(client, r["id"])).json()["status"] == "acknowledged"


@pytest.mark.usefixtures("ready")
async def test_if_match_is_checked_before_the_domain_rules(client: AsyncClient) -> None:
    """412 comes before 409: a stale If-Match on an action the state forbids is 412."""
    r = await create_referral(client)
    response = await client.post(
        f"/v1/referrals/{r['id']}/start",
        headers={**PROVIDER_A, "If-Match": '"7"'},
        json={"start_date": "2026-03-02"},
    )
    assert_problem(response, 412, "precondition-failed")


@pytest.mark.usefixtures("ready")
async def test_concurrent_actions_with_the_same_if_match(
    in_flight: InFlight, client: AsyncClient
) -> None:
    """Two clients read version 1 and act at once with ``If-Match: "1"``: one wins, the other
    is refused (412, or 409 if it read the row before the winner wrote)."""
    r = await create_referral(client)
    headers = {"If-Match": '"1"'}
    responses = await together(
        in_flight,
        client.post(
            f"/v1/referrals/{r['id']}/acknowledge", headers={**provider(1), **headers}, json={}
        ),
        client.post(f"/v1/referrals/{r['id']}/accept", headers={**provider(2), **headers}, json={}),
    )
    statuses = sorted(x.status_code for x in responses)
    assert statuses[0] == 200, [x.text for x in responses]
    assert statuses[1] in {409, 412}, [x.text for x in responses]
    assert len(await history(client, r["id"])) == 2
