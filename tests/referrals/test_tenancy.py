"""Tenancy (domain.md §1) and the read side: listing, search and the change feed
(api-contract.md, Referrals and Writes).

A provider must never learn that another provider's referral exists: every referral
endpoint answers 404 ``not-found`` exactly as for an id that does not exist, and lists,
searches and the feed never include another provider's referrals. ``jcp`` and ``post`` see
all; ``admin`` may not read referrals at all.
"""

from __future__ import annotations

import asyncio
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
    act,
    assert_problem,
    auth,
    create_referral,
)

UNKNOWN_ID = "01KAAAAAAAAAAAAAAAAAAAAAAA"

# Every action with a body that passes the schema, so that the answer is decided by the
# object (404) and never by the body's shape (422).
ACTIONS: dict[str, dict[str, Any]] = {
    "acknowledge": {},
    "accept": {},
    "reject": {"reason": "other", "note": "n"},
    "cancel": {"reason": "no_contact"},
    "did-not-attend": {},
    "did-not-start": {},
    "start": {"start_date": "2026-03-02"},
    "end": {"end_code": 1, "end_date": "2026-03-02", "last_engagement_date": "2026-03-02"},
}


# --- helpers -------------------------------------------------------------------------------


async def count(app: FastAPI, table: str, where: str = "", **params: Any) -> int:
    sql = f"SELECT COUNT(*) FROM {table}" + (f" WHERE {where}" if where else "")
    async with app.state.engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def list_all(
    client: AsyncClient, headers: dict[str, str], limit: int = 100, **query: Any
) -> list[dict[str, Any]]:
    """Every page of ``GET /v1/referrals``, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        params = {**query, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/v1/referrals", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items
        assert page["items"], "an empty page with a next_cursor"
    raise AssertionError("pagination does not end")


async def feed_pages(
    client: AsyncClient, headers: dict[str, str], *, limit: int, after: str | None = None
) -> list[list[dict[str, Any]]]:
    pages = []
    for _ in range(1000):
        params: dict[str, Any] = {"limit": limit}
        if after is not None:
            params["after"] = after
        response = await client.get("/v1/events", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        pages.append(page["items"])
        if page["next_cursor"] is None:
            return pages
        assert page["items"]
        # next_cursor is the cursor of the page's last event.
        assert page["next_cursor"] == page["items"][-1]["cursor"]
        after = page["next_cursor"]
    raise AssertionError("the feed does not end")


async def settled_feed(
    client: AsyncClient,
    headers: dict[str, str],
    expected: int,
    *,
    limit: int = 100,
    after: str | None = None,
) -> list[list[dict[str, Any]]]:
    """The feed read to its end. On PostgreSQL the feed holds back events of transactions
    that may still be in flight anywhere on the server (a documented design choice): poll
    for a while, as a CRM would, until the ``expected`` number of events shows."""
    pages: list[list[dict[str, Any]]] = []
    for _ in range(100):
        pages = await feed_pages(client, headers, limit=limit, after=after)
        if sum(len(p) for p in pages) >= expected:
            return pages
        await asyncio.sleep(0.05)
    return pages


def problem_signature(response: Response) -> tuple[int, str, str]:
    return (response.status_code, response.headers.get("content-type", ""), response.text)


@pytest.fixture
async def world(api: Api, client: AsyncClient) -> dict[str, Any]:
    """Two providers with a referral each on 2026-03-02."""
    await api.set_today("2026-03-02")
    await api.create_contract(provider_id="P100")
    await api.create_contract(provider_id="P200")
    mine = await create_referral(client, nino="AB111111A", provider_id="P100")
    theirs = await create_referral(client, nino="AB222222A", provider_id="P200")
    return {"mine": mine, "theirs": theirs}


# --- 404 exactly as for an unknown id ---------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/referrals/{id}", "/v1/referrals/{id}/history"])
async def test_reads_of_another_providers_referral_are_404_like_unknown(
    client: AsyncClient, world: dict[str, Any], path: str
) -> None:
    theirs = world["theirs"]["id"]
    foreign = await client.get(path.format(id=theirs), headers=PROVIDER_A)
    unknown = await client.get(path.format(id=UNKNOWN_ID), headers=PROVIDER_A)
    assert_problem(foreign, 404, "not-found")
    assert problem_signature(foreign) == problem_signature(unknown)
    assert foreign.json() == unknown.json()
    assert "etag" not in foreign.headers
    assert "AB222222A" not in foreign.text
    # The owner reads it.
    own = await client.get(path.format(id=theirs), headers=PROVIDER_B)
    assert own.status_code == 200, own.text


@pytest.mark.parametrize("action", list(ACTIONS))
@pytest.mark.parametrize("if_match", [None, '"1"', '"9"'])
async def test_actions_on_another_providers_referral_are_404_like_unknown(
    app: FastAPI, client: AsyncClient, world: dict[str, Any], action: str, if_match: str | None
) -> None:
    """Whatever the state would say (409) or the If-Match (412): 404 comes first."""
    theirs = world["theirs"]["id"]
    headers = {**PROVIDER_A, **({"If-Match": if_match} if if_match else {})}
    foreign = await act(client, theirs, action, ACTIONS[action], headers=headers)
    unknown = await act(client, UNKNOWN_ID, action, ACTIONS[action], headers=headers)
    assert_problem(foreign, 404, "not-found")
    assert problem_signature(foreign) == problem_signature(unknown)
    assert "etag" not in foreign.headers
    # Nothing happened to it.
    current = await client.get(f"/v1/referrals/{theirs}", headers=PROVIDER_B)
    assert current.json()["version"] == 1
    assert current.json()["status"] == "referred"
    assert await count(app, "referral_events", "referral_id = :r", r=theirs) == 1


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_actions_with_an_idempotency_key_on_another_providers_referral(
    client: AsyncClient, world: dict[str, Any], action: str
) -> None:
    theirs = world["theirs"]["id"]
    foreign = await act(
        client, theirs, action, ACTIONS[action], headers={**PROVIDER_A, "Idempotency-Key": "a"}
    )
    unknown = await act(
        client, UNKNOWN_ID, action, ACTIONS[action], headers={**PROVIDER_A, "Idempotency-Key": "b"}
    )
    assert_problem(foreign, 404, "not-found")
    assert foreign.json() == unknown.json()


async def test_back_out_by_a_provider_is_forbidden_alike(
    client: AsyncClient, world: dict[str, Any]
) -> None:
    """Back-out is for ``post``: a provider is refused 403 before the object is looked up,
    identically for its own, another provider's and an unknown referral."""
    body = {"reason": "x"}
    answers = [
        await act(client, rid, "back-out", body, headers=PROVIDER_A)
        for rid in (world["mine"]["id"], world["theirs"]["id"], UNKNOWN_ID)
    ]
    for answer in answers:
        assert_problem(answer, 403, "forbidden")
    assert len({problem_signature(a) for a in answers}) == 1


async def test_post_and_jcp_see_every_referral(client: AsyncClient, world: dict[str, Any]) -> None:
    for headers in (JCP, POST):
        for key in ("mine", "theirs"):
            rid = world[key]["id"]
            got = await client.get(f"/v1/referrals/{rid}", headers=headers)
            assert got.status_code == 200, got.text
            hist = await client.get(f"/v1/referrals/{rid}/history", headers=headers)
            assert [e["type"] for e in hist.json()["items"]] == ["created"]
        listed = await list_all(client, headers)
        assert {r["id"] for r in listed} == {world["mine"]["id"], world["theirs"]["id"]}
        found = await client.post(
            "/v1/referrals/search", headers=headers, json={"nino": "AB222222A"}
        )
        assert [r["id"] for r in found.json()["items"]] == [world["theirs"]["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/referrals", None),
        ("GET", "/v1/referrals/{id}", None),
        ("GET", "/v1/referrals/{id}/history", None),
        ("POST", "/v1/referrals/search", {"nino": "AB111111A"}),
        ("GET", "/v1/events", None),
    ],
)
async def test_admin_may_not_read_referrals(
    client: AsyncClient, world: dict[str, Any], method: str, path: str, body: Any
) -> None:
    response = await client.request(
        method, path.format(id=world["mine"]["id"]), headers=ADMIN, json=body
    )
    assert_problem(response, 403, "forbidden")
    assert "AB111111A" not in response.text


async def test_provider_without_a_scope_may_not_read(
    client: AsyncClient, world: dict[str, Any]
) -> None:
    no_scope = auth("provider", provider_id="P100", scopes=())
    response = await client.get(f"/v1/referrals/{world['mine']['id']}", headers=no_scope)
    assert_problem(response, 403, "forbidden")
    claims_only = auth("provider", provider_id="P100", scopes=("claims",))
    response = await client.get(f"/v1/referrals/{world['mine']['id']}", headers=claims_only)
    assert response.status_code == 200, response.text


# --- lists and search never leak ----------------------------------------------------------------


async def test_provider_lists_only_its_own(client: AsyncClient, world: dict[str, Any]) -> None:
    assert [r["id"] for r in await list_all(client, PROVIDER_A)] == [world["mine"]["id"]]
    assert [r["id"] for r in await list_all(client, PROVIDER_B)] == [world["theirs"]["id"]]
    # Asking for the other provider explicitly finds nothing (not a 403 that would confirm
    # or deny anything).
    response = await client.get("/v1/referrals", headers=PROVIDER_A, params={"provider_id": "P200"})
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [], "next_cursor": None}


async def test_provider_search_finds_only_its_own(
    client: AsyncClient, world: dict[str, Any]
) -> None:
    response = await client.post(
        "/v1/referrals/search", headers=PROVIDER_A, json={"nino": "AB222222A"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": []}
    response = await client.post(
        "/v1/referrals/search", headers=PROVIDER_B, json={"nino": "AB222222A"}
    )
    assert [r["id"] for r in response.json()["items"]] == [world["theirs"]["id"]]


async def test_same_participant_with_two_providers(
    api: Api, client: AsyncClient, world: dict[str, Any]
) -> None:
    """One NINO referred to P100 for JFS and to P200 for SES: each provider finds only its
    own referral of that person; jcp finds both."""
    await api.create_contract(provider_id="P200", programme="SES")
    other = await create_referral(client, nino="AB111111A", provider_id="P200", programme="SES")
    a = await client.post("/v1/referrals/search", headers=PROVIDER_A, json={"nino": "AB111111A"})
    b = await client.post("/v1/referrals/search", headers=PROVIDER_B, json={"nino": "AB111111A"})
    j = await client.post("/v1/referrals/search", headers=JCP, json={"nino": "AB111111A"})
    assert [r["id"] for r in a.json()["items"]] == [world["mine"]["id"]]
    assert [r["id"] for r in b.json()["items"]] == [other["id"]]
    assert {r["id"] for r in j.json()["items"]} == {world["mine"]["id"], other["id"]}


# --- search by NINO -----------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["AB111111A", "ab111111a", "AB 11 11 11 A", " ab 111111 a "])
async def test_search_normalises_the_nino(
    client: AsyncClient, world: dict[str, Any], spelling: str
) -> None:
    response = await client.post("/v1/referrals/search", headers=JCP, json={"nino": spelling})
    assert response.status_code == 200, response.text
    assert [r["id"] for r in response.json()["items"]] == [world["mine"]["id"]]


@pytest.mark.parametrize(
    "nino",
    [
        "QQ123456C",  # Q is never a first letter
        "AO123456C",  # O is never a second letter
        "GB123456A",  # not allocated
        "AB123456E",  # suffix A-D only
        "AB12345C",  # five digits
        "ABCDEFGHIJKLMNOP",  # too long
        "",
    ],
)
async def test_search_with_an_invalid_nino_does_not_echo_it(
    client: AsyncClient, world: dict[str, Any], nino: str
) -> None:
    response = await client.post("/v1/referrals/search", headers=JCP, json={"nino": nino})
    body = assert_problem(response, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == ["nino"]
    if nino:
        assert nino not in response.text
        assert nino.lower() not in response.text.lower()


async def test_search_is_a_post_and_needs_a_nino(
    client: AsyncClient, world: dict[str, Any]
) -> None:
    response = await client.post("/v1/referrals/search", headers=JCP, json={})
    assert_problem(response, 422, "validation-error")
    response = await client.post(
        "/v1/referrals/search", headers=JCP, json={"nino": "AB111111A", "surname": "Byron"}
    )
    assert_problem(response, 422, "validation-error")


# --- listing filters and keyset pagination ----------------------------------------------------


@pytest.fixture
async def many(api: Api, client: AsyncClient) -> dict[str, Any]:
    """Referrals across providers, programmes, statuses and referral dates."""
    await api.set_today("2026-03-02")
    for provider_id in ("P100", "P200"):
        for programme in ("JFS", "SES"):
            await api.create_contract(provider_id=provider_id, programme=programme)
    made: list[dict[str, Any]] = []
    n = 0
    for day in ("2026-03-02", "2026-03-03", "2026-03-04"):
        await api.set_today(day)
        for provider_id in ("P100", "P200"):
            for programme in ("JFS", "SES"):
                n += 1
                made.append(
                    await create_referral(
                        client, nino=f"AB{n:06d}C", provider_id=provider_id, programme=programme
                    )
                )
        if day == "2026-03-02":
            # Some statuses: P100 accepts its first-day referrals, P200 rejects its own.
            for r in made:
                headers = auth("provider", provider_id=r["provider_id"])
                if r["provider_id"] == "P100":
                    response = await act(client, r["id"], "accept", headers=headers)
                else:
                    response = await act(
                        client, r["id"], "reject", {"reason": "other"}, headers=headers
                    )
                assert response.status_code == 200, response.text
    return {"all": made}


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in items}


@pytest.mark.parametrize(
    ("query", "predicate"),
    [
        ({"status": "referred"}, lambda r: r["status"] == "referred"),
        ({"status": "accepted"}, lambda r: r["status"] == "accepted"),
        ({"status": "rejected"}, lambda r: r["status"] == "rejected"),
        ({"programme": "SES"}, lambda r: r["programme"] == "SES"),
        ({"provider_id": "P200"}, lambda r: r["provider_id"] == "P200"),
        ({"referred_from": "2026-03-03"}, lambda r: r["referral_date"] >= "2026-03-03"),
        ({"referred_to": "2026-03-03"}, lambda r: r["referral_date"] <= "2026-03-03"),
        (
            {"referred_from": "2026-03-03", "referred_to": "2026-03-03"},
            lambda r: r["referral_date"] == "2026-03-03",
        ),
        (
            {"programme": "JFS", "provider_id": "P100", "status": "accepted"},
            lambda r: (
                (r["programme"], r["provider_id"], r["status"]) == ("JFS", "P100", "accepted")
            ),
        ),
        ({"referred_from": "2026-03-05"}, lambda r: False),
    ],
)
async def test_list_filters(
    client: AsyncClient, many: dict[str, Any], query: dict[str, str], predicate: Any
) -> None:
    everything = await list_all(client, JCP)
    assert len(everything) == 12
    expected = {r["id"] for r in everything if predicate(r)}
    for limit in (100, 2):
        got = await list_all(client, JCP, limit=limit, **query)
        assert ids(got) == expected
        assert len(got) == len(expected)
        assert all(predicate(r) for r in got)


async def test_list_filters_for_a_provider(client: AsyncClient, many: dict[str, Any]) -> None:
    got = await list_all(client, PROVIDER_A, programme="SES", referred_from="2026-03-03")
    assert {(r["provider_id"], r["programme"]) for r in got} == {("P100", "SES")}
    assert len(got) == 2
    assert await list_all(client, PROVIDER_A, provider_id="P200") == []


@pytest.mark.parametrize("limit", [1, 3, 5, 11, 12, 13, 100])
async def test_keyset_pagination_gives_every_item_once(
    client: AsyncClient, many: dict[str, Any], limit: int
) -> None:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        response = await client.get("/v1/referrals", headers=POST, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append([r["id"] for r in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == limit, "a page before the last is full"
    flat = [rid for page in pages for rid in page]
    assert len(flat) == len(set(flat)) == 12
    assert set(flat) == ids(many["all"])
    assert len(pages) == -(-12 // limit)  # no empty trailing page
    assert 0 < len(pages[-1]) <= limit


async def test_last_page_has_a_null_cursor(client: AsyncClient, many: dict[str, Any]) -> None:
    response = await client.get("/v1/referrals", headers=JCP, params={"limit": 100})
    assert response.json()["next_cursor"] is None
    response = await client.get("/v1/referrals", headers=JCP)  # default 50
    assert response.json()["next_cursor"] is None
    assert len(response.json()["items"]) == 12
    empty = await client.get("/v1/referrals", headers=JCP, params={"status": "ended"})
    assert empty.json() == {"items": [], "next_cursor": None}


async def test_pagination_is_stable_under_inserts(
    api: Api, client: AsyncClient, many: dict[str, Any]
) -> None:
    """Keyset pages: new referrals made while paging do not shift or repeat items seen."""
    first = (await client.get("/v1/referrals", headers=JCP, params={"limit": 5})).json()
    await api.set_today("2026-03-05")
    await create_referral(client, nino="AB999999C")
    rest = await list_all(client, JCP, limit=5, cursor=first["next_cursor"])
    seen = [r["id"] for r in first["items"]] + [r["id"] for r in rest]
    assert len(seen) == len(set(seen))
    assert ids(many["all"]) <= set(seen)


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
@pytest.mark.parametrize("path", ["/v1/referrals", "/v1/events"])
async def test_limit_out_of_range(client: AsyncClient, path: str, limit: str) -> None:
    response = await client.get(path, headers=JCP, params={"limit": limit})
    body = assert_problem(response, 422, "validation-error")
    assert [e["field"] for e in body["errors"]] == ["limit"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "WzFd", "eyJhIjoxfQ", "%%%"])
async def test_bad_cursor(client: AsyncClient, many: dict[str, Any], cursor: str) -> None:
    response = await client.get("/v1/referrals", headers=JCP, params={"cursor": cursor})
    assert_problem(response, 422, "validation-error")
    response = await client.get("/v1/events", headers=JCP, params={"after": cursor})
    assert_problem(response, 422, "validation-error")


@pytest.mark.parametrize(
    "query",
    [
        {"status": "open"},
        {"programme": "XYZ"},
        {"referred_from": "2026-02-30"},
        {"referred_to": "yesterday"},
        {"provider_id": "P 100"},
    ],
)
async def test_bad_filters(client: AsyncClient, query: dict[str, str]) -> None:
    response = await client.get("/v1/referrals", headers=JCP, params=query)
    assert_problem(response, 422, "validation-error")


# --- the change feed -----------------------------------------------------------------------------


async def _activity(api: Api, client: AsyncClient) -> dict[str, Any]:
    """Referrals for two providers, with actions interleaved between them."""
    await api.set_today("2026-03-02")
    await api.create_contract(provider_id="P100")
    await api.create_contract(provider_id="P200")
    a1 = await create_referral(client, nino="AB000001C", provider_id="P100")
    b1 = await create_referral(client, nino="AB000002C", provider_id="P200")
    a2 = await create_referral(client, nino="AB000003C", provider_id="P100")
    assert (await act(client, a1["id"], "acknowledge")).status_code == 200
    assert (await act(client, b1["id"], "accept", headers=PROVIDER_B)).status_code == 200
    assert (await act(client, a1["id"], "accept")).status_code == 200
    assert (await act(client, a2["id"], "reject", {"reason": "duplicate"})).status_code == 200
    assert (await act(client, a1["id"], "start", {"start_date": "2026-03-02"})).status_code == 200
    return {"a1": a1, "a2": a2, "b1": b1}


EXPECTED_ORDER = [
    ("a1", "created"),
    ("b1", "created"),
    ("a2", "created"),
    ("a1", "acknowledged"),
    ("b1", "accepted"),
    ("a1", "accepted"),
    ("a2", "rejected"),
    ("a1", "started"),
]


@pytest.mark.parametrize("limit", [1, 2, 3, 8, 50])
async def test_feed_in_recording_order_without_gaps_or_repeats(
    api: Api, client: AsyncClient, limit: int
) -> None:
    refs = await _activity(api, client)
    name = {r["id"]: k for k, r in refs.items()}
    pages = await settled_feed(client, POST, len(EXPECTED_ORDER), limit=limit)
    flat = [e for page in pages for e in page]
    assert [(name[e["referral_id"]], e["type"]) for e in flat] == EXPECTED_ORDER
    assert len({e["id"] for e in flat}) == len(flat)
    assert len({e["cursor"] for e in flat}) == len(flat)
    if limit < len(EXPECTED_ORDER):
        assert len(pages) > 1


async def test_feed_resumes_from_the_last_cursor(api: Api, client: AsyncClient) -> None:
    refs = await _activity(api, client)
    first = [e for page in await settled_feed(client, JCP, 8) for e in page]
    assert len(first) == 8
    last = first[-1]["cursor"]
    # Nothing new yet.
    nothing = await client.get("/v1/events", headers=JCP, params={"after": last})
    assert nothing.json() == {"items": [], "next_cursor": None}
    # New events after the cursor; resuming gives exactly those.
    assert (
        await act(client, refs["b1"]["id"], "did-not-attend", headers=PROVIDER_B)
    ).status_code == 200
    c = await create_referral(client, nino="AB000004C", provider_id="P100")
    newer = [e for page in await settled_feed(client, JCP, 2, after=last) for e in page]
    assert [(e["referral_id"], e["type"]) for e in newer] == [
        (refs["b1"]["id"], "did_not_attend"),
        (c["id"], "created"),
    ]
    # Resuming from the middle gives the tail, in order.
    middle = first[3]["cursor"]
    tail = [e for page in await settled_feed(client, JCP, 6, after=middle) for e in page]
    assert [e["id"] for e in tail] == [e["id"] for e in first[4:]] + [e["id"] for e in newer]


async def test_feed_for_a_provider_is_its_own(api: Api, client: AsyncClient) -> None:
    refs = await _activity(api, client)
    mine = {refs["a1"]["id"], refs["a2"]["id"]}
    events_a = [e for page in await settled_feed(client, PROVIDER_A, 6, limit=2) for e in page]
    assert [e["type"] for e in events_a] == [
        "created",
        "created",
        "acknowledged",
        "accepted",
        "rejected",
        "started",
    ]
    assert {e["referral_id"] for e in events_a} == mine
    assert all(e["provider_id"] == "P100" for e in events_a)
    events_b = [e for page in await settled_feed(client, PROVIDER_B, 2, limit=1) for e in page]
    assert [e["type"] for e in events_b] == ["created", "accepted"]
    assert {e["referral_id"] for e in events_b} == {refs["b1"]["id"]}
    # A cursor taken from B's feed does not open A's events to B (nor the other way).
    resumed = await client.get(
        "/v1/events", headers=PROVIDER_B, params={"after": events_a[0]["cursor"]}
    )
    assert {e["referral_id"] for e in resumed.json()["items"]} <= {refs["b1"]["id"]}


async def test_feed_matches_histories(app: FastAPI, api: Api, client: AsyncClient) -> None:
    """The feed carries every recorded event exactly once; each referral's history is its
    part of the feed, in the same order."""
    refs = await _activity(api, client)
    flat = [e for page in await settled_feed(client, JCP, 8, limit=3) for e in page]
    assert len(flat) == await count(app, "referral_events")
    for r in refs.values():
        hist = (await client.get(f"/v1/referrals/{r['id']}/history", headers=JCP)).json()["items"]
        assert [e["id"] for e in hist] == [e["id"] for e in flat if e["referral_id"] == r["id"]]
        assert hist == [e for e in flat if e["referral_id"] == r["id"]]


async def test_feed_events_carry_their_actor(api: Api, client: AsyncClient) -> None:
    refs = await _activity(api, client)
    flat = [e for page in await settled_feed(client, POST, 8) for e in page]
    created = next(e for e in flat if e["referral_id"] == refs["a1"]["id"])
    assert created["actor"]["role"] == "jcp"
    started = flat[-1]
    assert started["type"] == "started"
    assert started["actor"] == {"sub": "provider-user", "role": "provider", "provider_id": "P100"}
    assert started["start_date"] == "2026-03-02"
