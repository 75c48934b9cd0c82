"""The automatic deadlines hold on every path (JFS 3.40, 5.08; domain.md §4), with the daily
job deliberately not run for a week. Over HTTP, on both databases.

JFS 3.40: a referral not started within 30 days "will be automatically closed"; JFS 5.08:
provision ends by itself when the allotted time has run. We closed them only when the job
ran, so a job down for a week left a window in which a provider could act past the deadline.
"""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.helpers import ADMIN, JCP, POST, Api, act, assert_problem, create_referral

NINO = "AB123456C"
REFERRED = "2026-03-01"  # domain.md §6: still open on 30 March, closed from 31 March
WEEK_LATE = "2026-04-07"


async def _history(client: AsyncClient, referral_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/referrals/{referral_id}/history", headers=POST)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _run(client: AsyncClient, job: str, as_of: str) -> dict[str, Any]:
    response = await client.post(f"/v1/jobs/{job}/runs", headers=ADMIN, json={"as_of": as_of})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_auto_dna_holds_without_the_job_jfs_3_40(client: AsyncClient, api: Api) -> None:
    """JFS 3.40, domain.md §4, §6: referred 1 March 2026 and accepted, the job not run for a
    week past 31 March: the referral still reads open on 30 March; on 7 April every read
    shows it cancelled / did_not_attend, closed by the system; a provider action is 409
    `invalid-transition`; the history holds one `auto_did_not_attend` event by `system`,
    and a late job run counts nothing, as it recorded nothing."""
    await api.set_today(REFERRED)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client, nino=NINO)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    await api.set_today("2026-03-30")
    still = (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()
    assert still["status"] == "accepted"
    assert still["auto_dna_on"] == "2026-03-31"
    await api.set_today(WEEK_LATE)
    listed = (await client.get("/v1/referrals", headers=POST)).json()["items"]
    assert [(r["status"], r["closed_by"]) for r in listed] == [("cancelled", "system")]
    shown = (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()
    assert shown["cancellation_reason"] == "did_not_attend"
    assert shown["allowed_actions"] == []
    assert shown["version"] == still["version"] + 1
    for action in ("did-not-attend", "did-not-start", "cancel"):
        body = {"reason": "no_contact"} if action == "cancel" else {}
        response = await act(client, referral["id"], action, body)
        assert_problem(response, 409, "invalid-transition")
    found = await client.post("/v1/referrals/search", headers=JCP, json={"nino": NINO})
    assert [r["status"] for r in found.json()["items"]] == ["cancelled"]
    system_events = [e for e in await _history(client, referral["id"]) if e["type"] != "created"]
    assert [(e["type"], e["actor"]["role"]) for e in system_events] == [
        ("accepted", "provider"),
        ("auto_did_not_attend", "system"),
    ]
    assert (await _run(client, "auto-dna", WEEK_LATE))["closed"] == 0
    assert len(await _history(client, referral["id"])) == 3


async def test_job_and_request_paths_close_alike_and_once_jfs_3_40(
    client: AsyncClient, api: Api
) -> None:
    """JFS 3.40, domain.md §4: whichever path comes first records the close, once. One
    referral is closed by the job, another by a read; both look the same (status, reason,
    `closed_by`, one system event), the job counts only the one it closed, and the CSS
    figures count them alike (CSS 2: eligible, not met, domain.md §9)."""
    await api.set_today(REFERRED)
    jfs = await api.create_contract(programme="JFS")
    by_read = await create_referral(client, nino=NINO)
    by_job = await create_referral(client, nino="AB654321C")
    await api.set_today(WEEK_LATE)
    read = (await client.get(f"/v1/referrals/{by_read['id']}", headers=POST)).json()
    assert (await _run(client, "auto-dna", WEEK_LATE))["closed"] == 1
    assert (await _run(client, "auto-dna", WEEK_LATE))["closed"] == 0
    job = (await client.get(f"/v1/referrals/{by_job['id']}", headers=POST)).json()
    for shown in (read, job):
        assert (shown["status"], shown["cancellation_reason"], shown["closed_by"]) == (
            "cancelled",
            "did_not_attend",
            "system",
        )
    for referral_id in (by_read["id"], by_job["id"]):
        types = [e["type"] for e in await _history(client, referral_id)]
        assert types == ["created", "auto_did_not_attend"]
    report = await client.get(
        f"/v1/contracts/{jfs['id']}/service-credits?from=2026-03&to=2026-03", headers=POST
    )
    css2 = report.json()["months"][0]["css2"]
    assert (css2["eligible"], css2["met"]) == (2, 0)


async def test_auto_end_holds_without_the_job_jfs_5_08(client: AsyncClient, api: Api) -> None:
    """JFS 5.08, domain.md §4: started 2 March 2026, JFS's 30 days run out on 1 April; a
    week later, without the job, the referral reads ended with code 45 and end date 1 April,
    closed by the system; the provider's end is 409; one `auto_ended` event; the job then
    counts nothing."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="JFS")
    referral = await create_referral(client, nino=NINO)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    started = await act(client, referral["id"], "start", {"start_date": "2026-03-02"})
    assert started.json()["auto_end_on"] == "2026-04-01"
    await api.set_today("2026-04-08")
    end = {"end_code": 1, "end_date": "2026-04-08", "last_engagement_date": "2026-04-08"}
    assert_problem(await act(client, referral["id"], "end", end), 409, "invalid-transition")
    shown = (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()
    assert (shown["status"], shown["end_code"], shown["end_date"], shown["closed_by"]) == (
        "ended",
        45,
        "2026-04-01",
        "system",
    )
    types = [e["type"] for e in await _history(client, referral["id"])]
    assert types.count("auto_ended") == 1
    assert (await _run(client, "auto-end", "2026-04-08"))["ended"] == 0


async def test_new_referral_after_an_unrun_auto_dna_jfs_5_19(client: AsyncClient, api: Api) -> None:
    """JFS 3.40, 5.19: a referral past its auto-DNA day is closed, so the participant may be
    referred again (not 409 `open-referral-exists`) even though the job has not run; the old
    one shows its system close."""
    await api.set_today(REFERRED)
    await api.create_contract(programme="JFS")
    old = await create_referral(client, nino=NINO)
    await api.set_today(WEEK_LATE)
    new = await create_referral(client, nino=NINO)
    assert new["status"] == "referred"
    assert new["re_referral"] is False
    types = [e["type"] for e in await _history(client, old["id"])]
    assert types == ["created", "auto_did_not_attend"]
