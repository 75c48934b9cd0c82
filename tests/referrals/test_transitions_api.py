"""The transition table, walked exhaustively over HTTP (domain.md §1 and §4, api-contract.md).

Every (state, action, caller) combination is its own test. The expected answer is computed
from ``app.referrals.transitions.TRANSITIONS`` alone, with the order of checks of
api-contract.md: the wrong role or a missing scope is 403 ``forbidden``; another provider's
referral is 404 ``not-found`` (tenancy: never reveal that it exists); a state the table does
not list as a source is 409 ``invalid-transition`` with nothing changed; otherwise 200 with
the table's target status and exactly one new history event of the table's event type.

The clock stands still on Monday 2 March 2026 (acknowledgement due on Tuesday 3 March), so
every referral is inside its acknowledgement window and every date in a body is today.

Speed: the tables are emptied once for the module (the conftest's per-test clean-up is
overridden here) and each test builds its own referral with a fresh NINO.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from app.referrals.states import ActorRole, ReferralAction, ReferralStatus
from app.referrals.transitions import HTTP_ACTIONS, TRANSITIONS, Transition
from tests.helpers import JCP, POST, Api, Caller, assert_problem, referral_body
from tests.tables import empty_tables

TODAY = "2026-03-02"  # a Monday; the acknowledgement is due on Tuesday 3 March
NOW = f"{TODAY}T10:00:00Z"
OWNER = "P100"
OTHER = "P200"
AFTER_BACK_OUT = "accepted-after-back-out"


# --- callers -------------------------------------------------------------------------------


CALLERS = {
    c.name: c
    for c in (
        Caller("jcp", "jcp"),
        Caller("post", "post"),
        Caller("admin", "admin"),
        Caller("provider", "provider", OWNER, ("referrals",)),
        Caller("provider-claims-only", "provider", OWNER, ("claims",)),
        Caller("other-provider", "provider", OTHER, ("referrals", "claims")),
    )
}
PROVIDER_HEADERS = CALLERS["provider"].headers
# Who may read a referral (api-contract.md, Referrals): not admin.
READERS = frozenset({"jcp", "post", "provider"})


# --- states --------------------------------------------------------------------------------

# Each state's status; the special state is `accepted` with a backed-out start pending.
STATE_STATUS: dict[str, ReferralStatus] = {s.value: s for s in ReferralStatus} | {
    AFTER_BACK_OUT: ReferralStatus.accepted
}
STATES = tuple(STATE_STATUS)

_START = ("start", {"start_date": TODAY})
_END = ("end", {"end_code": 1, "end_date": TODAY, "last_engagement_date": TODAY})
_BACK_OUT = ("back-out", {"reason": "start recorded in error"})

# How each state is reached from `referred` (provider actions unless marked post).
RECIPES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "referred": [],
    "acknowledged": [("acknowledge", {})],
    "accepted": [("acknowledge", {}), ("accept", {})],
    "started": [("acknowledge", {}), ("accept", {}), _START],
    "ended": [("acknowledge", {}), ("accept", {}), _START, _END],
    "rejected": [("reject", {"reason": "not_suitable", "note": "outside the area"})],
    "cancelled": [("acknowledge", {}), ("cancel", {"reason": "no_contact"})],
    AFTER_BACK_OUT: [("acknowledge", {}), ("accept", {}), _START, _BACK_OUT],
}


def action_body(action: ReferralAction, state: str) -> dict[str, Any]:
    """A valid body for the action (valid whatever the state)."""
    match action:
        case ReferralAction.acknowledge | ReferralAction.accept:
            return {}
        case ReferralAction.reject:
            return {"reason": "duplicate", "note": "already referred"}
        case ReferralAction.cancel:
            # After a back-out the only cancel allowed is "did not start" (JFS 3.37).
            reason = "did_not_start" if state == AFTER_BACK_OUT else "no_contact"
            return {"reason": reason, "note": "cancelled"}
        case ReferralAction.did_not_attend:
            return {"note": "did not attend the initial meeting"}
        case ReferralAction.did_not_start:
            return {"note": "did not start"}
        case ReferralAction.start:
            return {"start_date": TODAY, "provider_reference": "CRM-1"}
        case ReferralAction.end:
            return {"end_code": 1, "end_date": TODAY, "last_engagement_date": TODAY}
        case ReferralAction.back_out:
            return {"reason": "start recorded in error"}
    raise AssertionError(action)


# --- the expectation, from the table alone -------------------------------------------------


def state_in_sources(state: str, transition: Transition) -> bool:
    if STATE_STATUS[state] not in transition.sources:
        return False
    if state == AFTER_BACK_OUT and transition.actor is ActorRole.provider:
        return transition.allowed_after_back_out
    return True


def expected(state: str, action: ReferralAction, caller: Caller) -> tuple[int, str | None]:
    """(status, problem code) in api-contract.md's order of checks: 403, 404, then 409."""
    transition = TRANSITIONS[action]
    if caller.role != str(transition.actor):
        return 403, "forbidden"
    if transition.scope is not None and str(transition.scope) not in caller.scopes:
        return 403, "forbidden"
    if caller.provider_id is not None and caller.provider_id != OWNER:
        return 404, "not-found"
    if not state_in_sources(state, transition):
        return 409, "invalid-transition"
    return 200, None


def expected_allowed(state: str, caller: Caller) -> set[str]:
    return {str(a) for a in HTTP_ACTIONS if expected(state, a, caller)[0] == 200}


# --- HTTP ----------------------------------------------------------------------------------

_ninos = itertools.count(1)


def fresh_nino() -> str:
    return f"AB{next(_ninos):06d}C"


async def act(
    client: AsyncClient, rid: str, action: str, body: dict[str, Any], headers: dict[str, str]
) -> Response:
    return await client.post(f"/v1/referrals/{rid}/{action}", headers=headers, json=body)


async def build(client: AsyncClient, state: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/referrals", headers=JCP, json=referral_body(nino=fresh_nino(), provider_id=OWNER)
    )
    assert response.status_code == 201, response.text
    referral: dict[str, Any] = response.json()
    for action, body in RECIPES[state]:
        headers = POST if action == "back-out" else PROVIDER_HEADERS
        response = await act(client, referral["id"], action, body, headers)
        assert response.status_code == 200, (state, action, response.text)
        referral = response.json()
    assert referral["status"] == STATE_STATUS[state]
    if state == AFTER_BACK_OUT:
        assert referral["start_date"] is None
        assert referral["start_backed_out_at"] is not None
        assert referral["cancel_overdue"] is False
    return referral


async def snapshot(client: AsyncClient, rid: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The referral and its history, as post sees them."""
    response = await client.get(f"/v1/referrals/{rid}", headers=POST)
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == f'"{response.json()["version"]}"'
    history = await client.get(f"/v1/referrals/{rid}/history", headers=POST)
    assert history.status_code == 200, history.text
    return response.json(), history.json()["items"]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _clean_tables() -> None:
    """Overrides the conftest's per-test clean-up: the module cleans once (``world``)."""


@pytest.fixture(scope="module", autouse=True)
async def world(app: FastAPI) -> None:
    await empty_tables(app.state.engine)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://prap.test") as c:
        api = Api(c)
        await api.set_clock(NOW)
        await api.create_contract(provider_id=OWNER)
        await api.create_contract(provider_id=OTHER)


# --- the table itself ----------------------------------------------------------------------


def test_the_walk_covers_every_state_and_http_action() -> None:
    assert set(STATE_STATUS.values()) == set(ReferralStatus)
    assert {str(a) for a in HTTP_ACTIONS} == {
        "acknowledge",
        "accept",
        "reject",
        "cancel",
        "did-not-attend",
        "did-not-start",
        "start",
        "end",
        "back-out",
    }
    # Terminal states are sources of no action at all (domain.md §4).
    for status in (ReferralStatus.ended, ReferralStatus.rejected, ReferralStatus.cancelled):
        assert all(status not in t.sources for t in TRANSITIONS.values())
    # After a back-out, the provider may only cancel as did-not-start (JFS 3.37).
    assert expected_allowed(AFTER_BACK_OUT, CALLERS["provider"]) == {"cancel", "did-not-start"}


# --- the walk ------------------------------------------------------------------------------


@pytest.mark.parametrize("caller_name", list(CALLERS))
@pytest.mark.parametrize("action", [str(a) for a in HTTP_ACTIONS])
@pytest.mark.parametrize("state", STATES)
async def test_transition(client: AsyncClient, state: str, action: str, caller_name: str) -> None:
    caller = CALLERS[caller_name]
    referral_action = ReferralAction(action)
    transition = TRANSITIONS[referral_action]
    status, code = expected(state, referral_action, caller)
    referral = await build(client, state)
    rid = referral["id"]
    before, history_before = await snapshot(client, rid)

    # What GET offers this caller agrees with what the action endpoint does.
    seen = await client.get(f"/v1/referrals/{rid}", headers=caller.headers)
    if caller.role not in READERS:
        assert_problem(seen, 403, "forbidden")
    elif caller.provider_id not in (None, OWNER):
        assert_problem(seen, 404, "not-found")
    else:
        assert seen.status_code == 200, seen.text
        assert (action in seen.json()["allowed_actions"]) == (status == 200)

    response = await act(client, rid, action, action_body(referral_action, state), caller.headers)

    after, history_after = await snapshot(client, rid)
    if status == 200:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == transition.target
        assert body["id"] == rid
        assert body["version"] > before["version"]
        assert response.headers["ETag"] == f'"{body["version"]}"'
        assert after["status"] == transition.target
        assert after["version"] == body["version"]
        assert len(history_after) == len(history_before) + 1
        assert history_after[: len(history_before)] == history_before
        event = history_after[-1]
        assert event["type"] == transition.event
        assert event["actor"]["role"] == caller.role
        assert event["actor"]["sub"] == caller.name
        assert event["actor"]["provider_id"] == caller.provider_id
        assert event["status"] == transition.target
        assert event["version"] == body["version"]
        expected_closed_by = "provider" if transition.target.is_terminal else None
        assert after["closed_by"] == expected_closed_by
    else:
        assert code is not None
        problem = assert_problem(response, status, code)
        assert rid not in problem["detail"]
        assert after["status"] == before["status"]
        assert after["version"] == before["version"]
        assert after["updated_at"] == before["updated_at"]
        assert history_after == history_before

    if caller_name == "other-provider":
        # Reading it is 404 too, exactly as for an id that does not exist.
        for path in (f"/v1/referrals/{rid}", f"/v1/referrals/{rid}/history"):
            assert_problem(await client.get(path, headers=caller.headers), 404, "not-found")
        if status == 404:
            # Indistinguishable from an id that does not exist.
            unknown = await act(
                client,
                "no-such-referral",
                action,
                action_body(referral_action, state),
                caller.headers,
            )
            assert unknown.status_code == 404
            assert unknown.json() == response.json()


# --- allowed_actions -----------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
async def test_allowed_actions(client: AsyncClient, state: str) -> None:
    """GET's ``allowed_actions`` is, for each caller, exactly what the walk finds allowed."""
    referral = await build(client, state)
    rid = referral["id"]
    for caller in CALLERS.values():
        response = await client.get(f"/v1/referrals/{rid}", headers=caller.headers)
        if caller.role not in READERS:
            assert_problem(response, 403, "forbidden")
            continue
        if caller.provider_id not in (None, OWNER):
            assert_problem(response, 404, "not-found")
            continue
        assert response.status_code == 200, response.text
        offered = response.json()["allowed_actions"]
        assert len(offered) == len(set(offered)), offered
        assert set(offered) == expected_allowed(state, caller), (caller.name, offered)
    # The representation an action returns carries the same list (here: the build's last).
    if RECIPES[state] and RECIPES[state][-1][0] != "back-out":
        assert set(referral["allowed_actions"]) == expected_allowed(state, CALLERS["provider"])


# --- after a back-out ----------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["no_contact", "did_not_attend"])
async def test_after_back_out_only_the_did_not_start_cancel(
    client: AsyncClient, reason: str
) -> None:
    referral = await build(client, AFTER_BACK_OUT)
    rid = referral["id"]
    before, history_before = await snapshot(client, rid)
    response = await act(client, rid, "cancel", {"reason": reason}, PROVIDER_HEADERS)
    assert_problem(response, 409, "invalid-transition")
    after, history_after = await snapshot(client, rid)
    assert (after["status"], after["version"]) == (before["status"], before["version"])
    assert history_after == history_before

    response = await act(client, rid, "cancel", {"reason": "did_not_start"}, PROVIDER_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancellation_reason"] == "did_not_start"
    assert response.json()["allowed_actions"] == []
