"""Rules read again beside the seeds (issue 11): where our earlier reading and the guidance
differ, the docstring quotes the seed. Over HTTP, on both databases.

Sources: GEN 122 (segregation of duties), JFS 5.16 and 1.23 (the maximum 20-day duration),
HTW 70 (exclusive programmes), HTW 115, 159, 162 (CWP allotted time from the referral date),
JFS annex 2 (policy reference), domain.md §4, §5, §6, §7, §9.
"""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.claim_support import DAY0, claim_ok, contract, started_referral
from tests.helpers import (
    JCP,
    POST,
    Api,
    act,
    assert_problem,
    auth,
    create_referral,
    referral_body,
)
from tests.helpers import PROVIDER as P100

NINO = "AB123456C"


async def _referral_count(client: AsyncClient) -> int:
    body = (await client.get("/v1/referrals", headers=POST)).json()
    return len(body["items"])


# --- GEN 122 both ways ------------------------------------------------------------------------


async def test_claimant_cannot_then_record_end_or_start_gen_122(
    client: AsyncClient, api: Api
) -> None:
    """GEN 122: "ensure a segregation of duties ... between those staff directly involved in
    delivering the Services and those making claims for payment". We read it one way only
    (a starter may not claim); it holds both ways: a user who has claimed for a referral may
    not then record its end (403 `segregation-of-duties`, nothing changed); a colleague
    may."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    dana = auth("provider", sub="dana", provider_id=P100, scopes=("referrals", "claims"))
    referral = await started_referral(client, i=1, programme="SES")
    await claim_ok(client, referral["id"], "attachment", headers=dana)
    end = {"end_code": 1, "end_date": DAY0, "last_engagement_date": DAY0}
    refused = await act(client, referral["id"], "end", end, headers=dana)
    body = assert_problem(refused, 403, "segregation-of-duties")
    assert "GEN 122" in body["detail"]
    current = (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()
    assert current["status"] == "started"
    assert current["version"] == referral["version"]
    colleague = await act(client, referral["id"], "end", end)
    assert colleague.status_code == 200, colleague.text


# --- JFS 5.16, 1.23: the maximum 20-day duration ------------------------------------------


async def _jfs_participation(client: AsyncClient, api: Api, end_date: str) -> None:
    await api.set_today(DAY0)  # Monday 2 March 2026
    referral = await create_referral(client, nino=NINO)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    started = await act(client, referral["id"], "start", {"start_date": DAY0})
    assert started.status_code == 200, started.text
    await api.set_today(end_date)
    body = {"end_code": 1, "end_date": end_date, "last_engagement_date": end_date}
    ended = await act(client, referral["id"], "end", body)
    assert ended.status_code == 200, ended.text


async def test_no_jfs_re_referral_after_maximum_duration_jfs_5_16_1_23(
    client: AsyncClient, api: Api
) -> None:
    """JFS 5.16: re-referral only if "the Participant has not previously reached the maximum
    20-day duration"; JFS 1.23: "delivered within a maximum of 20 working days from the start
    date". Started Monday 2 March 2026, the 20th working day after is Monday 30 March: a
    participation that ended that day bars a re-referral (409 `re-referral-not-allowed`)."""
    await api.create_contract(programme="JFS")
    await _jfs_participation(client, api, "2026-03-30")
    refused = await client.post("/v1/referrals", headers=JCP, json=referral_body(nino=NINO))
    assert_problem(refused, 409, "re-referral-not-allowed")
    assert await _referral_count(client) == 1


async def test_jfs_re_referral_before_maximum_duration_jfs_5_16(
    client: AsyncClient, api: Api
) -> None:
    """JFS 5.16, 1.23: ended on Friday 27 March 2026, the 19th working day after a start on
    2 March, the maximum was not reached: the re-referral is allowed."""
    await api.create_contract(programme="JFS")
    await _jfs_participation(client, api, "2026-03-27")
    again = await create_referral(client, nino=NINO)
    assert again["re_referral"] is True
    programmes = (await client.get("/v1/programmes", headers=JCP)).json()["items"]
    by_code = {p["code"]: p for p in programmes}
    assert by_code["JFS"]["max_duration_working_days"] == 20
    assert by_code["SES"]["max_duration_working_days"] is None


# --- HTW 70: exclusive programmes ---------------------------------------------------------


async def test_open_cwp_referral_excludes_other_provision_htw_70(
    client: AsyncClient, api: Api
) -> None:
    """HTW 70: "Claimants allocated to CWP must no longer be considered for referral to other
    provision". While a CWP referral is open, a referral to another programme is 409
    `exclusive-programme` (nothing stored, no NINO in the answer); once it is closed the
    referral is allowed; the rule does not run the other way (an open JFS referral does not
    bar CWP)."""
    await api.set_today(DAY0)
    for programme in ("CWP", "JFS", "SES"):
        await api.create_contract(programme=programme)
    cwp = await create_referral(client, nino=NINO, programme="CWP")
    for programme in ("JFS", "SES"):
        refused = await client.post(
            "/v1/referrals", headers=JCP, json=referral_body(nino=NINO, programme=programme)
        )
        body = assert_problem(refused, 409, "exclusive-programme")
        assert NINO not in refused.text
        assert "HTW 70" in body["detail"]
    assert await _referral_count(client) == 1
    rejected = await act(client, cwp["id"], "reject", {"reason": "not_suitable"})
    assert rejected.status_code == 200, rejected.text
    jfs = await create_referral(client, nino=NINO, programme="JFS")
    assert jfs["status"] == "referred"
    cwp_again = await create_referral(client, nino=NINO, programme="CWP")
    assert cwp_again["status"] == "referred"
    programmes = (await client.get("/v1/programmes", headers=JCP)).json()["items"]
    assert {p["code"]: p["exclusive"] for p in programmes} == {
        "CWP": True,
        "FND": False,
        "JFS": False,
        "SES": False,
    }


# --- HTW 115, 159, 162: CWP allotted time from the original referral date ---------------------


async def _started(client: AsyncClient, api: Api, programme: str) -> dict[str, Any]:
    await api.set_today(DAY0)
    await api.create_contract(programme=programme)
    referral = await create_referral(client, nino=NINO, programme=programme)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    await api.set_today("2026-03-10")
    started = await act(client, referral["id"], "start", {"start_date": "2026-03-09"})
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


async def test_cwp_allotted_time_runs_from_referral_date_htw_115(
    client: AsyncClient, api: Api
) -> None:
    """HTW 115: "the expected end date which is 30 weeks after the original referral date";
    HTW 159, 162: "unless 30 weeks has elapsed since the date of the original referral to
    CWP". We counted 210 days from the start; a CWP referral made 2 March 2026 and started
    9 March ends by itself on 28 September 2026 (2 March + 210 days)."""
    started = await _started(client, api, "CWP")
    assert started["auto_end_on"] == "2026-09-28"
    programmes = (await client.get("/v1/programmes", headers=JCP)).json()["items"]
    assert {p["code"]: p["allotted_from"] for p in programmes} == {
        "CWP": "referral_date",
        "FND": "start_date",
        "JFS": "start_date",
        "SES": "start_date",
    }


async def test_jfs_allotted_time_still_runs_from_start_jfs_5_08(
    client: AsyncClient, api: Api
) -> None:
    """JFS 5.08: JFS's 30 days run from the start date: started 9 March → 8 April 2026."""
    started = await _started(client, api, "JFS")
    assert started["auto_end_on"] == "2026-04-08"


# --- JFS annex 2, domain.md §4: a blank policy reference is none ------------------------------


async def test_blank_policy_reference_counts_as_missing_jfs_annex_2(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §4: "A `policy_reference` that is empty or only blanks counts as missing":
    codes 37 and 46 with `"   "` are 422 `policy-reference-required`, nothing changed."""
    await api.set_today(DAY0)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client, nino=NINO)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    assert (await act(client, referral["id"], "start", {"start_date": DAY0})).status_code == 200
    for code in (37, 46):
        for blank in ("", "   ", "\t"):
            body = {
                "end_code": code,
                "end_date": DAY0,
                "last_engagement_date": DAY0,
                "policy_reference": blank,
            }
            response = await act(client, referral["id"], "end", body)
            assert_problem(response, 422, "policy-reference-required")
    current = (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()
    assert current["status"] == "started"


# --- domain.md §9: percent cut to two decimals ----------------------------------------------


async def test_percent_is_cut_not_rounded_domain_9(client: AsyncClient) -> None:
    """domain.md §9, api-contract.md: `percent` is cut to two decimals, never rounded up:
    107/120 reads 89.16 (89.1666...), 18999/20000 reads 94.99 (94.995%, amber)."""
    response = await client.post(
        "/v1/service-credits/calculate",
        headers=JCP,
        json={
            "monthly_service_fee_pence": 1_000_000,
            "months": [
                {
                    "month": "2026-01",
                    "css1": {"eligible": 120, "met": 107},
                    "css2": {"eligible": 20_000, "met": 18_999},
                }
            ],
        },
    )
    assert response.status_code == 200, response.text
    month = response.json()["months"][0]
    assert month["css1"]["percent"] == "89.16"
    assert (month["css2"]["percent"], month["css2"]["rag"]) == ("94.99", "amber")
