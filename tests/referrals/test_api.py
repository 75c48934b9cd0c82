from __future__ import annotations

from httpx import AsyncClient

from tests.helpers import POST, Api, act, create_referral


async def test_happy_path(client: AsyncClient, api: Api) -> None:
    await api.set_today("2026-03-02")
    await api.create_contract()
    referral = await create_referral(client)
    assert referral["status"] == "referred"
    assert referral["acknowledgement_due"] == "2026-03-03"
    rid = referral["id"]
    r = await act(client, rid, "acknowledge")
    assert r.status_code == 200, r.text
    r = await act(client, rid, "accept")
    assert r.status_code == 200, r.text
    await api.set_today("2026-03-05")
    r = await act(client, rid, "start", {"start_date": "2026-03-04"})
    assert r.status_code == 200, r.text
    assert r.json()["allowed_actions"] == ["end"]
    r = await act(client, rid, "back-out", {"reason": "duplicate"}, headers=POST)
    assert r.status_code == 200, r.text
    r = await act(client, rid, "did-not-start", {})
    assert r.status_code == 200, r.text
    history = (await client.get(f"/v1/referrals/{rid}/history", headers=POST)).json()["items"]
    assert [e["type"] for e in history] == [
        "created",
        "acknowledged",
        "accepted",
        "started",
        "backed_out",
        "did_not_start",
    ]
    feed = (await client.get("/v1/events", headers=POST)).json()
    assert len(feed["items"]) == 6
