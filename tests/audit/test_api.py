"""The read audit (domain.md §10, GEN 71; api-contract.md Personal data): one record per
response that showed a participant's personal data, naming every referral it showed."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
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
    referral_body,
)

KEY = "Idempotency-Key"


async def _reads(client: AsyncClient, referral_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(
        "/v1/audit/reads", headers=POST, params={"referral_id": referral_id, **params}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_every_read_of_a_participant_is_recorded(client: AsyncClient, api: Api) -> None:
    """GEN 71: create, get, list, search, history and actions each leave one record: who
    (sub, role, provider), when, which operation, which referrals."""
    await api.set_clock("2026-03-02T09:00:00Z")
    await api.create_contract()
    referral = await create_referral(client)
    rid = referral["id"]
    assert (await client.get(f"/v1/referrals/{rid}", headers=PROVIDER_A)).status_code == 200
    assert (await client.get("/v1/referrals", headers=JCP)).status_code == 200
    search = await client.post("/v1/referrals/search", headers=POST, json={"nino": "AB123456C"})
    assert search.status_code == 200
    assert (await client.get(f"/v1/referrals/{rid}/history", headers=JCP)).status_code == 200
    assert (await act(client, rid, "accept")).status_code == 200
    # Refused or not found: nothing shown, nothing recorded.
    assert (await client.get(f"/v1/referrals/{rid}", headers=PROVIDER_B)).status_code == 404
    assert (await act(client, rid, "accept")).status_code == 409

    items = (await _reads(client, rid))["items"]
    assert [i["operation"] for i in items] == [
        "createReferral",
        "getReferral",
        "listReferrals",
        "searchReferrals",
        "getReferralHistory",
        "acceptReferral",
    ]
    assert all(i["referral_ids"] == [rid] for i in items)
    assert items[0]["actor"] == {"sub": "jcp-user", "role": "jcp", "provider_id": None}
    assert items[1]["actor"] == {"sub": "provider-user", "role": "provider", "provider_id": "P100"}
    assert items[0]["at"].startswith("2026-03-02T09:00:00")


async def test_a_list_is_one_record_naming_every_referral(client: AsyncClient, api: Api) -> None:
    """api-contract.md: one record per response, naming every referral it showed; a page with
    nothing on it records nothing."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    ids = [(await create_referral(client, nino=f"AB{i:06d}C"))["id"] for i in range(1, 6)]
    page = await client.get("/v1/referrals", headers=JCP, params={"limit": 3})
    shown = [r["id"] for r in page.json()["items"]]
    assert (await client.get("/v1/referrals", headers=JCP, params={"status": "ended"})).json()[
        "items"
    ] == []
    items = (await _reads(client, ids[0]))["items"]
    assert [i["operation"] for i in items] == ["createReferral", "listReferrals"]
    assert items[1]["referral_ids"] == shown == ids[:3]
    assert [i["operation"] for i in (await _reads(client, ids[4]))["items"]] == ["createReferral"]


async def test_audit_pages_and_roles(client: AsyncClient, api: Api) -> None:
    """listReadAudit is for post and admin only; it pages with an opaque cursor."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    rid = (await create_referral(client))["id"]
    for _ in range(3):
        await client.get(f"/v1/referrals/{rid}", headers=JCP)
    first = await _reads(client, rid, limit=2)
    second = await _reads(client, rid, limit=2, cursor=first["next_cursor"])
    assert len(first["items"]) == 2
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None
    admin = await client.get("/v1/audit/reads", headers=ADMIN, params={"referral_id": rid})
    assert admin.status_code == 200
    for headers in (JCP, PROVIDER_A):
        refused = await client.get("/v1/audit/reads", headers=headers, params={"referral_id": rid})
        assert_problem(refused, 403, "forbidden")
    bad = await client.get(
        "/v1/audit/reads", headers=POST, params={"referral_id": rid, "cursor": "x"}
    )
    assert_problem(bad, 422, "validation-error")


async def _read_rows(app: FastAPI) -> int:
    async with app.state.engine.connect() as connection:
        return int(
            (await connection.execute(text("SELECT COUNT(*) FROM referral_reads"))).scalar_one()
        )


async def test_a_replay_is_a_read_like_the_first_answer(client: AsyncClient, api: Api) -> None:
    """GEN 71 (issue 12): an idempotent replay shows the participant again, so it is recorded
    like the answer it repeats: one record naming the replaying caller, the referral and the
    operation, at the time of the replay."""
    await api.set_clock("2026-03-02T09:00:00Z")
    await api.create_contract()
    body = referral_body()
    first = await client.post("/v1/referrals", headers=JCP | {KEY: "create-1"}, json=body)
    assert first.status_code == 201, first.text
    rid = first.json()["id"]
    await api.set_clock("2026-03-02T10:00:00Z")
    # The same caller with a token of its own (another session, the same identity).
    jcp_again = auth("jcp") | {KEY: "create-1"}
    replay = await client.post("/v1/referrals", headers=jcp_again, json=body)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"

    accept = PROVIDER_A | {KEY: "accept-1"}
    assert (await act(client, rid, "accept", headers=accept)).status_code == 200
    replayed_action = await act(client, rid, "accept", headers=accept)
    assert replayed_action.status_code == 200
    assert replayed_action.headers["idempotent-replayed"] == "true"

    items = (await _reads(client, rid))["items"]
    assert [i["operation"] for i in items] == [
        "createReferral",
        "createReferral",
        "acceptReferral",
        "acceptReferral",
    ]
    assert all(i["referral_ids"] == [rid] for i in items)
    assert items[1]["actor"] == {"sub": "jcp-user", "role": "jcp", "provider_id": None}
    assert items[1]["at"].startswith("2026-03-02T10:00:00")
    assert items[3]["actor"] == {"sub": "provider-user", "role": "provider", "provider_id": "P100"}


async def test_a_replay_that_showed_no_one_records_nothing(
    client: AsyncClient, api: Api, app: FastAPI
) -> None:
    """A stored refusal, or an answer about no participant, shows no personal data when it
    is replayed: no read is recorded."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    rid = (await create_referral(client))["id"]
    assert (await act(client, rid, "accept")).status_code == 200
    before = await _read_rows(app)

    refused = PROVIDER_A | {KEY: "accept-again"}
    for _ in range(2):
        assert_problem(await act(client, rid, "accept", headers=refused), 409, "invalid-transition")
    contract = {
        "provider_id": "P999",
        "programme": "JFS",
        "start_date": "2026-01-01",
        "end_date": "2027-12-31",
        "monthly_service_fee_pence": 0,
        "attachment_fee_pence": 0,
        "job_outcome_fee_pence": 0,
        "sustainment_fee_pence": 0,
    }
    answers = [
        await client.post("/v1/contracts", headers=ADMIN | {KEY: "contract-1"}, json=contract)
        for _ in range(2)
    ]
    assert answers[0].status_code == 201, answers[0].text
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert await _read_rows(app) == before


async def test_the_change_feed_records_the_referrals_whose_notes_it_showed(
    client: AsyncClient, api: Api
) -> None:
    """GEN 71: a feed page shows a participant's personal data where an event carries a note
    or a free-text reason (what erasure removes, GEN 136): one listEvents record naming those
    referrals. Events of codes and dates only show no one, and record nothing."""
    await api.set_today("2026-03-02")
    await api.create_contract()
    plain = (await create_referral(client, nino="AB000001C"))["id"]
    noted = (await create_referral(client, nino="AB000002C"))["id"]
    rejected = await act(client, noted, "reject", {"reason": "other", "note": "Moved to Leeds"})
    assert rejected.status_code == 200, rejected.text
    before = len((await _reads(client, noted))["items"])

    feed = await client.get("/v1/events", headers=PROVIDER_A)
    assert feed.status_code == 200, feed.text
    assert {e["referral_id"] for e in feed.json()["items"]} == {plain, noted}

    reads = (await _reads(client, noted))["items"]
    assert len(reads) == before + 1
    assert reads[-1]["operation"] == "listEvents"
    assert reads[-1]["referral_ids"] == [noted]
    assert reads[-1]["actor"] == {"sub": "provider-user", "role": "provider", "provider_id": "P100"}
    assert [i["operation"] for i in (await _reads(client, plain))["items"]] == ["createReferral"]
