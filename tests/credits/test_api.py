"""Service credits over HTTP (domain.md §9; JFS 6.07-6.10, 7.44; api-contract.md "Contracts,
programmes, service credits"): the calculator endpoint and a contract's live report built
from the referrals recorded, referral by referral.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.core.calendar import acknowledgement_due, nth_working_day_after
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

CALCULATE = "/v1/service-credits/calculate"

# --- the calculator endpoint ---------------------------------------------------------------

CONTRACT_EXAMPLE_BODY = {
    "monthly_service_fee_pence": 1000000,
    "months": [
        {
            "month": "2026-01",
            "css1": {"eligible": 100, "met": 96},
            "css2": {"eligible": 120, "met": 100},
        }
    ],
}
CONTRACT_EXAMPLE_ANSWER = {
    "months": [
        {
            "month": "2026-01",
            "css1": {
                "eligible": 100,
                "met": 96,
                "percent": "96.00",
                "rag": "green",
                "deduction_percent": 0,
            },
            "css2": {
                "eligible": 120,
                "met": 100,
                "percent": "83.33",
                "rag": "red",
                "deduction_percent": 5,
            },
            "deduction_percent": 5,
            "deduction_pence": 50000,
            "fee_payable_pence": 950000,
            "termination_threshold": False,
            "termination_right": False,
        }
    ],
    "total_deduction_pence": 50000,
}


def without_nulls(value: Any) -> Any:
    """The answer may carry extra fields that are null (``final`` belongs to the live
    report); compare everything else exactly."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


async def test_calculate_reproduces_the_api_contract_example(client: AsyncClient) -> None:
    """api-contract.md: the calculator's example body gives exactly the example answer
    (JFS 6.07: CSS 2 at 83.33% is red, 5% of 1,000,000p)."""
    response = await client.post(CALCULATE, headers=JCP, json=CONTRACT_EXAMPLE_BODY)
    assert response.status_code == 200, response.text
    answer = response.json()
    # The one extra field (allowed by api-contract.md) is the live report's ``final``, null
    # here; everything else is exactly the documented answer.
    for month in answer["months"]:
        assert month.pop("final", None) is None
    assert answer == CONTRACT_EXAMPLE_ANSWER


async def test_calculate_several_months_sliding_pair_jfs_6_07(client: AsyncClient) -> None:
    """JFS 6.07-6.08 over HTTP: CSS 1 red, red (5, 10), CSS 2 amber, amber (0, 5); the month
    before the first row counts as green (api-contract.md)."""
    body = {
        "monthly_service_fee_pence": 333_333,
        "months": [
            {
                "month": "2025-12",
                "css1": {"eligible": 20, "met": 16},
                "css2": {"eligible": 10, "met": 9},
            },
            {
                "month": "2026-01",
                "css1": {"eligible": 7, "met": 0},
                "css2": {"eligible": 1000, "met": 949},
            },
            {
                "month": "2026-02",
                "css1": {"eligible": 0, "met": 0},
                "css2": {"eligible": 0, "met": 0},
            },
        ],
    }
    response = await client.post(CALCULATE, headers=PROVIDER_A, json=body)
    assert response.status_code == 200, response.text
    months = response.json()["months"]
    assert [(m["css1"]["rag"], m["css2"]["rag"]) for m in months] == [
        ("red", "amber"),
        ("red", "amber"),
        ("not_measured", "not_measured"),
    ]
    assert [m["css1"]["percent"] for m in months] == ["80.00", "0.00", None]
    assert [m["css2"]["percent"] for m in months] == ["90.00", "94.90", None]
    assert [m["deduction_percent"] for m in months] == [5, 15, 0]
    # 5% of 333,333p = 16,666.65p -> 16,667p; 15% = 49,999.95p -> 50,000p (half up, once).
    assert [m["deduction_pence"] for m in months] == [16_667, 50_000, 0]
    assert [m["fee_payable_pence"] for m in months] == [316_666, 283_333, 333_333]
    assert response.json()["total_deduction_pence"] == 66_667


def month_row(month: str, e1: int = 10, m1: int = 10, e2: int = 10, m2: int = 10) -> dict[str, Any]:
    return {
        "month": month,
        "css1": {"eligible": e1, "met": m1},
        "css2": {"eligible": e2, "met": m2},
    }


@pytest.mark.parametrize(
    "body",
    [
        # met above eligible
        {"monthly_service_fee_pence": 1, "months": [month_row("2026-01", 10, 11)]},
        {"monthly_service_fee_pence": 1, "months": [month_row("2026-01", e2=0, m2=1)]},
        # months out of order, or repeated
        {
            "monthly_service_fee_pence": 1,
            "months": [month_row("2026-02"), month_row("2026-01")],
        },
        {
            "monthly_service_fee_pence": 1,
            "months": [month_row("2026-01"), month_row("2026-01")],
        },
        # bad month strings
        {"monthly_service_fee_pence": 1, "months": [month_row("2026-13")]},
        {"monthly_service_fee_pence": 1, "months": [month_row("2026-1")]},
        {"monthly_service_fee_pence": 1, "months": [month_row("January 2026")]},
        {"monthly_service_fee_pence": 1, "months": [month_row("2026-00")]},
        # no months
        {"monthly_service_fee_pence": 1, "months": []},
        # negative numbers, missing fee
        {"monthly_service_fee_pence": -1, "months": [month_row("2026-01")]},
        {"monthly_service_fee_pence": 1, "months": [month_row("2026-01", -1, 0)]},
        {"months": [month_row("2026-01")]},
    ],
)
async def test_calculate_validation_errors(client: AsyncClient, body: dict[str, Any]) -> None:
    """api-contract.md: a body that does not fit the schema is 422 ``validation-error``
    with the field errors listed."""
    response = await client.post(CALCULATE, headers=ADMIN, json=body)
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"]
    assert all({"field", "message"} <= error.keys() for error in problem["errors"])


async def test_calculate_any_role_but_a_token_is_required(client: AsyncClient) -> None:
    """api-contract.md: ``POST /v1/service-credits/calculate`` is for any role; without a
    token it is 401 ``unauthenticated``."""
    for headers in (JCP, POST, ADMIN, PROVIDER_A, PROVIDER_B, auth("provider", scopes=())):
        response = await client.post(CALCULATE, headers=headers, json=CONTRACT_EXAMPLE_BODY)
        assert response.status_code == 200, (headers, response.text)
    response = await client.post(CALCULATE, json=CONTRACT_EXAMPLE_BODY)
    assert_problem(response, 401, "unauthenticated")
    response = await client.post(
        CALCULATE, headers={"Authorization": "Bearer nonsense"}, json=CONTRACT_EXAMPLE_BODY
    )
    assert_problem(response, 401, "unauthenticated")


# --- the live report: a referral-by-referral scenario ---------------------------------------
#
# JFS contract of provider P100, monthly service fee 1,000,000p. Working days (domain.md §3;
# 3 and 6 April 2026 are Good Friday and Easter Monday; 4 May is the Early May bank holiday):
#
#   referral date   ack due (3.07)  8th wd (CSS 1)  10th wd (CSS 2)
#   Mon  2 Mar      Tue  3 Mar      Thu 12 Mar      Mon 16 Mar
#   Wed  4 Mar      Thu  5 Mar      Mon 16 Mar      Wed 18 Mar
#   Fri  6 Mar      Mon  9 Mar      Wed 18 Mar      Fri 20 Mar
#   Mon  9 Mar      Tue 10 Mar      Thu 19 Mar      Mon 23 Mar
#   Wed 11 Mar      Thu 12 Mar      Mon 23 Mar      Wed 25 Mar
#   Mon 16 Mar      Tue 17 Mar      Thu 26 Mar      Mon 30 Mar
#   Wed 18 Mar      Thu 19 Mar      Mon 30 Mar      Wed  1 Apr
#   Mon 23 Mar      Tue 24 Mar      Thu  2 Apr      Wed  8 Apr
#   Tue 31 Mar      Wed  1 Apr      Tue 14 Apr      Thu 16 Apr   <- last of March's cohort
#   Wed  1 Apr      Thu  2 Apr      Wed 15 Apr      Fri 17 Apr
#   Thu 30 Apr      Fri  1 May      Wed 13 May      Fri 15 May   <- last of April's cohort
#
# March cohort (13 referrals):
#   R1  2 Mar  accepted 2 Mar, start recorded 12 Mar, start 12 Mar   CSS1 met    CSS2 met
#   R2  2 Mar  accepted 3 Mar, start recorded 13 Mar, start 13 Mar   CSS1 late   CSS2 met
#   R3  4 Mar  accepted 4 Mar, start recorded 19 Mar, start 16 Mar   CSS1 met    CSS2 late
#              (retrospective start, JFS 3.27: meeting on time, recorded late)
#   R4  6 Mar  acknowledged 9 Mar, DNS 18 Mar with meeting 18 Mar   CSS1 met    CSS2 met
#   R5  9 Mar  acknowledged 9 Mar, DNA recorded 23 Mar              -           CSS2 met
#   R6  9 Mar  accepted 10 Mar, DNA recorded 24 Mar                 -           CSS2 late
#   R7 11 Mar  rejected 11 Mar (duplicate)                          -           excluded
#   R8 16 Mar  acknowledged 16 Mar, closed by auto DNA 15 Apr       -           CSS2 not met
#   R9 18 Mar  accepted 18 Mar, start recorded 19 Mar (start 19 Mar), backed out by post
#              2 Apr, cancelled did-not-start 2 Apr (no meeting date): the back-out clears
#              the meeting and the recorded day; the DNS is recorded after 1 Apr
#                                                                   -           CSS2 late
#   R10 23 Mar accepted 24 Mar, start recorded 2 Apr, start 2 Apr   CSS1 met    CSS2 met
#   R11 31 Mar never acknowledged; accept on 2 Apr refused (JFS 3.07-3.08), auto DNA 30 Apr
#                                                                   -           CSS2 not met
#   R12 31 Mar acknowledged 1 Apr, DNA recorded 16 Apr (the 10th wd) -          CSS2 met
#   R13  4 Mar acknowledged 4 Mar, cancelled no_contact 5 Mar: no start, DNA or DNS
#                                                                   -           CSS2 not met
#
#   CSS 1: eligible R1 R2 R3 R4 R10 = 5, met R1 R3 R4 R10 = 4 -> 80.00%, red (< 85%).
#   CSS 2: eligible all but R7 = 12, met R1 R2 R4 R5 R10 R12 = 6 -> 50.00%, red (< 90%).
#   February: nobody referred, not measured, so March is a first red: 5% + 5% = 100,000p.
#
# April cohort (2 referrals, both 1 Apr):
#   A1 accepted 1 Apr, start recorded 17 Apr, start 16 Apr          CSS1 late   CSS2 met
#   A2 acknowledged 1 Apr, DNA recorded 20 Apr                      -           CSS2 late
#
#   CSS 1: 0/1 = 0.00% red, red in March too -> 10%. CSS 2: 1/2 = 50.00% red -> 10%.
#   April: 20% = 200,000p. Two red months only: no termination flag (JFS 6.07, 6.10).
#   May: nobody referred, not measured, nothing deducted.

FEE = 1_000_000


@dataclass
class Scenario:
    contract_id: str
    ids: dict[str, str] = field(default_factory=dict)
    ninos: list[str] = field(default_factory=list)


def nino(number: int) -> str:
    return f"AB{number:06d}C"


def ok(response: Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def run_auto_dna(client: AsyncClient) -> int:
    body = ok(await client.post("/v1/jobs/auto-dna/runs", headers=ADMIN, json={}))
    closed: int = body["closed"]
    return closed


async def build_scenario(client: AsyncClient, api: Api) -> Scenario:
    """The March and April 2026 cohorts above, recorded day by day on the sandbox clock."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract(monthly_service_fee_pence=FEE)
    s = Scenario(contract_id=contract["id"])
    counter = iter(range(1, 100))

    async def refer(name: str) -> None:
        referral = await create_referral(client, nino=nino(next(counter)))
        s.ids[name] = referral["id"]

    async def do(name: str, action: str, body: dict[str, Any] | None = None) -> None:
        ok(await act(client, s.ids[name], action, body))

    # Mon 2 Mar
    await refer("R1")
    await refer("R2")
    await do("R1", "accept")
    await api.set_today("2026-03-03")
    await do("R2", "accept")  # on its acknowledgement deadline
    await api.set_today("2026-03-04")
    await refer("R3")
    await refer("R13")
    await do("R3", "accept")
    await do("R13", "acknowledge")
    await api.set_today("2026-03-05")
    await do("R13", "cancel", {"reason": "no_contact"})
    await api.set_today("2026-03-06")
    await refer("R4")
    await api.set_today("2026-03-09")
    await do("R4", "acknowledge")  # Friday's referral: day 1 Fri, day 2 Mon
    await refer("R5")
    await refer("R6")
    await do("R5", "acknowledge")
    await api.set_today("2026-03-10")
    await do("R6", "accept")
    await api.set_today("2026-03-11")
    await refer("R7")
    await do("R7", "reject", {"reason": "duplicate"})
    await api.set_today("2026-03-12")
    await do("R1", "start", {"start_date": "2026-03-12"})
    await api.set_today("2026-03-13")
    await do("R2", "start", {"start_date": "2026-03-13"})
    await api.set_today("2026-03-16")
    await refer("R8")
    await do("R8", "acknowledge")
    await api.set_today("2026-03-18")
    await do("R4", "did-not-start", {"initial_meeting_date": "2026-03-18"})
    await refer("R9")
    await do("R9", "accept")
    await api.set_today("2026-03-19")
    await do("R3", "start", {"start_date": "2026-03-16"})
    await do("R9", "start", {"start_date": "2026-03-19"})
    await api.set_today("2026-03-23")
    await do("R5", "did-not-attend")
    await refer("R10")
    await api.set_today("2026-03-24")
    await do("R6", "did-not-attend")
    await do("R10", "accept")
    await api.set_today("2026-03-31")
    await refer("R11")
    await refer("R12")
    await api.set_today("2026-04-01")
    await do("R12", "acknowledge")
    await refer("A1")
    await refer("A2")
    await do("A1", "accept")
    await do("A2", "acknowledge")
    await api.set_today("2026-04-02")
    # JFS 3.07-3.08: R11 was not acknowledged by Wed 1 Apr, so it can no longer be accepted.
    response = await act(client, s.ids["R11"], "accept")
    assert_problem(response, 409, "acknowledgement-window-closed")
    await do("R10", "start", {"start_date": "2026-04-02"})
    response = await act(client, s.ids["R9"], "back-out", {"reason": "error"}, headers=POST)
    ok(response)
    await do("R9", "did-not-start")
    await api.set_today("2026-04-15")
    assert await run_auto_dna(client) == 1  # R8: 16 Mar + 30 days
    await api.set_today("2026-04-16")
    await do("R12", "did-not-attend")
    await api.set_today("2026-04-17")
    await do("A1", "start", {"start_date": "2026-04-16"})
    await api.set_today("2026-04-20")
    await do("A2", "did-not-attend")
    await api.set_today("2026-04-30")
    assert await run_auto_dna(client) == 1  # R11: 31 Mar + 30 days
    return s


def report_url(contract_id: str, first: str, last: str) -> str:
    return f"/v1/contracts/{contract_id}/service-credits?from={first}&to={last}"


async def get_report(
    client: AsyncClient, contract_id: str, first: str, last: str, headers: dict[str, str] = POST
) -> dict[str, Any]:
    return ok(await client.get(report_url(contract_id, first, last), headers=headers))


def test_hand_worked_deadlines_match_the_calendar() -> None:
    """The table above, checked against the service's working-day calendar (domain.md §3)."""
    table = [
        ("2026-03-02", "2026-03-03", "2026-03-12", "2026-03-16"),
        ("2026-03-04", "2026-03-05", "2026-03-16", "2026-03-18"),
        ("2026-03-06", "2026-03-09", "2026-03-18", "2026-03-20"),
        ("2026-03-09", "2026-03-10", "2026-03-19", "2026-03-23"),
        ("2026-03-11", "2026-03-12", "2026-03-23", "2026-03-25"),
        ("2026-03-16", "2026-03-17", "2026-03-26", "2026-03-30"),
        ("2026-03-18", "2026-03-19", "2026-03-30", "2026-04-01"),
        ("2026-03-23", "2026-03-24", "2026-04-02", "2026-04-08"),
        ("2026-03-31", "2026-04-01", "2026-04-14", "2026-04-16"),
        ("2026-04-01", "2026-04-02", "2026-04-15", "2026-04-17"),
        ("2026-04-30", "2026-05-01", "2026-05-13", "2026-05-15"),
    ]
    for referral, ack, css1, css2 in table:
        day = date.fromisoformat(referral)
        assert acknowledgement_due(day, 2).isoformat() == ack
        assert nth_working_day_after(day, 8).isoformat() == css1
        assert nth_working_day_after(day, 10).isoformat() == css2


async def test_live_report_counts_referral_by_referral_jfs_7_44(
    client: AsyncClient, api: Api
) -> None:
    """JFS 7.44 CSS 1 and 2 from the referrals recorded, JFS 6.07-6.08 deductions: March red
    in both (5% + 5%), April red in both again (10% + 10%), February and May not measured."""
    s = await build_scenario(client, api)
    await api.set_today("2026-05-20")
    report = await get_report(client, s.contract_id, "2026-02", "2026-05")
    assert report["contract_id"] == s.contract_id
    assert report["monthly_service_fee_pence"] == FEE
    months = {m["month"]: m for m in report["months"]}
    assert list(months) == ["2026-02", "2026-03", "2026-04", "2026-05"]

    march = months["2026-03"]
    assert march["css1"] == {
        "eligible": 5,
        "met": 4,
        "percent": "80.00",
        "rag": "red",
        "deduction_percent": 5,
    }
    assert march["css2"] == {
        "eligible": 12,
        "met": 6,
        "percent": "50.00",
        "rag": "red",
        "deduction_percent": 5,
    }
    assert march["deduction_percent"] == 10
    assert march["deduction_pence"] == 100_000
    assert march["fee_payable_pence"] == 900_000

    april = months["2026-04"]
    assert april["css1"] == {
        "eligible": 1,
        "met": 0,
        "percent": "0.00",
        "rag": "red",
        "deduction_percent": 10,
    }
    assert april["css2"] == {
        "eligible": 2,
        "met": 1,
        "percent": "50.00",
        "rag": "red",
        "deduction_percent": 10,
    }
    assert april["deduction_percent"] == 20
    assert april["deduction_pence"] == 200_000
    assert april["fee_payable_pence"] == 800_000

    for quiet in (months["2026-02"], months["2026-05"]):
        for standard in ("css1", "css2"):
            assert quiet[standard] == {
                "eligible": 0,
                "met": 0,
                "percent": None,
                "rag": "not_measured",
                "deduction_percent": 0,
            }
        assert quiet["deduction_pence"] == 0
        assert quiet["fee_payable_pence"] == FEE
    assert not any(m["termination_threshold"] or m["termination_right"] for m in months.values())
    assert report["total_deduction_pence"] == 300_000
    # By 20 May the deadlines of February, March and April have passed; May's run on.
    assert [m["final"] for m in months.values()] == [True, True, True, False]


async def test_live_report_agrees_with_the_calculator(client: AsyncClient, api: Api) -> None:
    """api-contract.md: the contract endpoint gives "the same month rows" as the calculator
    for the same counts (the month before February has no referrals: green or not measured
    give the same results here)."""
    s = await build_scenario(client, api)
    await api.set_today("2026-05-20")
    report = await get_report(client, s.contract_id, "2026-03", "2026-04")
    body = {
        "monthly_service_fee_pence": FEE,
        "months": [
            {
                "month": m["month"],
                "css1": {k: m["css1"][k] for k in ("eligible", "met")},
                "css2": {k: m["css2"][k] for k in ("eligible", "met")},
            }
            for m in report["months"]
        ],
    }
    calculated = ok(await client.post(CALCULATE, headers=POST, json=body))
    live = [{k: v for k, v in m.items() if k != "final"} for m in report["months"]]
    assert without_nulls(live) == without_nulls(calculated["months"])
    assert calculated["total_deduction_pence"] == report["total_deduction_pence"]


async def test_live_report_provisional_until_every_deadline_passed_domain_9(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §9: a month is final once every cohort deadline has passed. March's last
    deadline is Thu 16 Apr (CSS 2 for a referral on 31 Mar), April's Fri 15 May."""
    s = await build_scenario(client, api)
    expected = {
        "2026-04-02": (False, False),
        "2026-04-16": (False, False),  # the last March deadline is today: still running
        "2026-04-17": (True, False),
        "2026-05-15": (True, False),
        "2026-05-16": (True, True),
    }
    for today, (march_final, april_final) in expected.items():
        await api.set_today(today)
        report = await get_report(client, s.contract_id, "2026-03", "2026-04")
        finals = tuple(m["final"] for m in report["months"])
        assert finals == (march_final, april_final), today
        # The counts are the referrals recorded; the clock changes only the final flag.
        assert report["total_deduction_pence"] == 300_000


async def test_live_report_provisional_counts_while_running_jfs_7_44(
    client: AsyncClient, api: Api
) -> None:
    """Before the deadlines run out the report counts what is recorded so far: on 13 Mar
    (R1 and R2 started; R13 cancelled with no contact; R7 rejected) March is provisional."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract(monthly_service_fee_pence=FEE)
    first = (await create_referral(client, nino=nino(1)))["id"]
    second = (await create_referral(client, nino=nino(2)))["id"]
    ok(await act(client, first, "accept"))
    ok(await act(client, second, "accept"))
    await api.set_today("2026-03-04")
    third = (await create_referral(client, nino=nino(3)))["id"]
    ok(await act(client, third, "reject", {"reason": "inappropriate"}))
    await api.set_today("2026-03-12")
    ok(await act(client, first, "start", {"start_date": "2026-03-12"}))
    await api.set_today("2026-03-13")
    ok(await act(client, second, "start", {"start_date": "2026-03-13"}))
    report = await get_report(client, contract["id"], "2026-03", "2026-03")
    [march] = report["months"]
    # CSS 1: both started, first on the 8th working day (12 Mar), second a day late: 1/2.
    assert (march["css1"]["eligible"], march["css1"]["met"]) == (2, 1)
    assert march["css1"]["percent"] == "50.00"
    # CSS 2: the rejected referral is excluded; both starts recorded by 16 Mar: 2/2.
    assert (march["css2"]["eligible"], march["css2"]["met"]) == (2, 2)
    assert march["css2"]["rag"] == "green"
    assert march["final"] is False


async def test_back_out_clears_the_recorded_day_jfs_3_37(client: AsyncClient, api: Api) -> None:
    """JFS 3.37-3.38 with JFS 7.44: a start backed out was recorded in error. Until the
    did-not-start is recorded CSS 2 is not met; the did-not-start then counts on its own
    day (met here: on the 10th working day), and its meeting date gives CSS 1."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract()
    rid = (await create_referral(client))["id"]
    ok(await act(client, rid, "accept"))
    await api.set_today("2026-03-04")
    ok(await act(client, rid, "start", {"start_date": "2026-03-04"}))

    async def march() -> dict[str, Any]:
        [row] = (await get_report(client, contract["id"], "2026-03", "2026-03"))["months"]
        return row

    row = await march()
    assert (row["css1"]["met"], row["css2"]["met"]) == (1, 1)
    await api.set_today("2026-03-15")
    ok(await act(client, rid, "back-out", {"reason": "recorded in error"}, headers=POST))
    row = await march()
    assert (row["css1"]["eligible"], row["css2"]["eligible"], row["css2"]["met"]) == (0, 1, 0)
    await api.set_today("2026-03-16")  # 10th working day after 2 Mar
    ok(await act(client, rid, "did-not-start", {"initial_meeting_date": "2026-03-12"}))
    row = await march()
    assert (row["css1"]["eligible"], row["css1"]["met"]) == (1, 1)  # meeting on 12 Mar
    assert (row["css2"]["eligible"], row["css2"]["met"]) == (1, 1)


async def test_deductions_across_consecutive_months_jfs_6_07(client: AsyncClient, api: Api) -> None:
    """JFS 6.07: CSS 2 red in March and in April: 5% then 10% of the contract's fee
    (1,234,567p: 61,728.35p -> 61,728p, 123,456.7p -> 123,457p). One referral a month,
    auto DNA'd (JFS 3.40: not met); nobody had a meeting, so CSS 1 is not measured."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract(monthly_service_fee_pence=1_234_567)
    await create_referral(client, nino=nino(1))
    await api.set_today("2026-04-01")
    assert await run_auto_dna(client) == 1
    await create_referral(client, nino=nino(2))
    await api.set_today("2026-05-01")
    assert await run_auto_dna(client) == 1
    await api.set_today("2026-06-01")
    report = await get_report(client, contract["id"], "2026-03", "2026-04")
    march, april = report["months"]
    assert march["css1"]["rag"] == april["css1"]["rag"] == "not_measured"
    assert (march["css2"]["eligible"], march["css2"]["met"], march["css2"]["rag"]) == (
        1,
        0,
        "red",
    )
    assert [m["css2"]["deduction_percent"] for m in (march, april)] == [5, 10]
    assert [m["deduction_pence"] for m in (march, april)] == [61_728, 123_457]
    assert [m["fee_payable_pence"] for m in (march, april)] == [1_172_839, 1_111_110]
    assert report["total_deduction_pence"] == 185_185
    # A report starting in April still sees March as context (JFS 6.07: red twice).
    [april_alone] = (await get_report(client, contract["id"], "2026-04", "2026-04"))["months"]
    assert april_alone["css2"]["deduction_percent"] == 10


async def test_termination_threshold_live_jfs_6_07(client: AsyncClient, api: Api) -> None:
    """JFS 6.07: CSS 2 red three months running (one auto-DNA'd referral a month)."""
    await api.set_today("2026-01-05")
    contract = await api.create_contract()
    for number, (refer_on, run_on) in enumerate(
        (("2026-01-05", "2026-02-04"), ("2026-02-04", "2026-03-06"), ("2026-03-06", "2026-04-05")),
        start=1,
    ):
        await api.set_today(refer_on)
        await create_referral(client, nino=nino(number))
        await api.set_today(run_on)
        assert await run_auto_dna(client) == 1
    await api.set_today("2026-05-01")
    report = await get_report(client, contract["id"], "2026-01", "2026-03")
    assert [m["termination_threshold"] for m in report["months"]] == [False, False, True]
    assert [m["deduction_percent"] for m in report["months"]] == [5, 10, 10]


# --- tenancy, roles, parameters -------------------------------------------------------------


async def test_report_tenancy_and_roles(client: AsyncClient, api: Api) -> None:
    """api-contract.md: admin, post and the contract's own provider may read it; another
    provider gets 404 as for a contract that does not exist (domain.md §1); jcp 403."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract()
    url = report_url(contract["id"], "2026-01", "2026-03")
    for headers in (
        ADMIN,
        POST,
        PROVIDER_A,
        auth("provider", scopes=("claims",)),
        auth("provider", scopes=("referrals",)),
    ):
        assert (await client.get(url, headers=headers)).status_code == 200
    other = assert_problem(await client.get(url, headers=PROVIDER_B), 404, "not-found")
    missing = assert_problem(
        await client.get(report_url("no-such-contract", "2026-01", "2026-03"), headers=PROVIDER_B),
        404,
        "not-found",
    )
    assert other["detail"] == missing["detail"]
    assert_problem(await client.get(url, headers=JCP), 403, "forbidden")
    assert_problem(await client.get(url), 401, "unauthenticated")
    assert_problem(await client.get(url, headers=auth("provider", scopes=())), 403, "forbidden")
    assert_problem(
        await client.get(report_url("no-such-contract", "2026-01", "2026-03"), headers=ADMIN),
        404,
        "not-found",
    )


@pytest.mark.parametrize(
    ("first", "last"),
    [
        ("2026-04", "2026-03"),  # from after to
        ("2023-01", "2026-01"),  # 37 months
        ("2020-01", "2026-12"),
        ("2026-13", "2026-12"),
        ("2026-1", "2026-03"),
        ("2026-01", "March"),
        ("2026-01-01", "2026-03"),
    ],
)
async def test_report_range_validation(
    client: AsyncClient, api: Api, first: str, last: str
) -> None:
    """api-contract.md: ``from`` and ``to`` are YYYY-MM, from <= to, at most 36 months:
    else 422 ``validation-error``."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract()
    response = await client.get(report_url(contract["id"], first, last), headers=ADMIN)
    assert_problem(response, 422, "validation-error")


async def test_report_range_of_36_months_and_of_one(client: AsyncClient, api: Api) -> None:
    await api.set_today("2026-03-02")
    contract = await api.create_contract()
    report = await get_report(client, contract["id"], "2023-04", "2026-03", ADMIN)
    assert len(report["months"]) == 36
    assert report["months"][0]["month"] == "2023-04"
    assert report["months"][-1]["month"] == "2026-03"
    assert [
        m["month"]
        for m in (await get_report(client, contract["id"], "2025-12", "2025-12"))["months"]
    ] == ["2025-12"]


async def test_report_csv_export_matches_json(client: AsyncClient, api: Api) -> None:
    """MI export (JFS 6.07 "PRAP system MI"): ``Accept: text/csv`` gives a header row and
    one row per month and standard, with the JSON report's values."""
    s = await build_scenario(client, api)
    await api.set_today("2026-04-17")
    url = report_url(s.contract_id, "2026-02", "2026-05")
    report = await get_report(client, s.contract_id, "2026-02", "2026-05")
    response = await client.get(url, headers=POST | {"Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(lines) == 1 + 2 * 4
    assert len(rows) == 2 * 4
    assert {"month", "standard", "eligible", "met", "percent", "rag"} <= set(rows[0])
    expected = []
    for month in report["months"]:
        for standard in ("css1", "css2"):
            result = month[standard]
            expected.append(
                {
                    "contract_id": s.contract_id,
                    "month": month["month"],
                    "standard": standard,
                    "eligible": str(result["eligible"]),
                    "met": str(result["met"]),
                    "percent": result["percent"] or "",
                    "rag": result["rag"],
                    "standard_deduction_percent": str(result["deduction_percent"]),
                    "month_deduction_percent": str(month["deduction_percent"]),
                    "month_deduction_pence": str(month["deduction_pence"]),
                    "fee_payable_pence": str(month["fee_payable_pence"]),
                    "termination_threshold": str(month["termination_threshold"]).lower(),
                    "termination_right": str(month["termination_right"]).lower(),
                    "final": str(month["final"]).lower(),
                }
            )
    assert rows == expected
    # The hand-worked March figures, as they read in the file.
    march = [r for r in rows if r["month"] == "2026-03"]
    assert [(r["standard"], r["eligible"], r["met"], r["percent"], r["rag"]) for r in march] == [
        ("css1", "5", "4", "80.00", "red"),
        ("css2", "12", "6", "50.00", "red"),
    ]
    assert {r["final"] for r in march} == {"true"}
    assert {r["final"] for r in rows if r["month"] == "2026-04"} == {"false"}
    # Tenancy holds for the export too.
    response = await client.get(url, headers=PROVIDER_B | {"Accept": "text/csv"})
    assert_problem(response, 404, "not-found")


# --- dates, contracts and programmes ---------------------------------------------------------


async def test_recording_day_and_referral_date_are_uk_dates_domain_3(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §3 and §9: the cohort is the UK referral date, and CSS 2 compares the UK
    date of the recording (British Summer Time from 29 March 2026). Referrals made at
    10:00Z on Tue 31 Mar: CSS 2 due Thu 16 Apr. A DNA at 23:30Z on 15 Apr is 00:30 on
    16 Apr in the UK (met); one at 23:30Z on 16 Apr is 17 Apr in the UK (late). A referral
    made at 23:30Z on 31 Mar is made on 1 Apr in the UK: April's cohort."""
    await api.set_clock("2026-03-31T10:00:00Z")
    contract = await api.create_contract()
    on_time = (await create_referral(client, nino=nino(1)))["id"]
    late = (await create_referral(client, nino=nino(2)))["id"]
    ok(await act(client, on_time, "acknowledge"))
    ok(await act(client, late, "acknowledge"))
    await api.set_clock("2026-03-31T23:30:00Z")
    april = await create_referral(client, nino=nino(3))
    assert april["referral_date"] == "2026-04-01"
    await api.set_clock("2026-04-15T23:30:00Z")
    ok(await act(client, on_time, "did-not-attend"))
    await api.set_clock("2026-04-16T23:30:00Z")
    ok(await act(client, late, "did-not-attend"))
    report = await get_report(client, contract["id"], "2026-03", "2026-04")
    march, april_row = report["months"]
    assert (march["css2"]["eligible"], march["css2"]["met"]) == (2, 1)
    assert (april_row["css2"]["eligible"], april_row["css2"]["met"]) == (1, 0)
    # 23:30Z on 16 Apr is already 17 Apr in the UK: March's last deadline (16 Apr) passed.
    assert march["final"] is True


async def test_report_counts_only_the_contracts_own_referrals_jfs_7_44(
    client: AsyncClient, api: Api
) -> None:
    """A contract's cohorts are its own referrals: not another provider's JFS contract, nor
    the same provider's contract for another programme."""
    await api.set_today("2026-03-02")
    jfs = await api.create_contract()
    other_provider = await api.create_contract(provider_id="P200")
    ses = await api.create_contract(programme="SES")
    mine = (await create_referral(client, nino=nino(1)))["id"]
    await create_referral(client, nino=nino(2), provider_id="P200")
    ses_referral = (await create_referral(client, nino=nino(3), programme="SES"))["id"]
    ok(await act(client, mine, "accept"))
    ok(await act(client, ses_referral, "accept"))
    ok(await act(client, mine, "start", {"start_date": "2026-03-02"}))
    ok(await act(client, ses_referral, "start", {"start_date": "2026-03-02"}))
    # Ending the start later leaves the day it was first recorded (JFS 7.44: CSS 2 is met).
    await api.set_today("2026-03-20")
    ok(
        await act(
            client,
            mine,
            "end",
            {"end_code": 1, "end_date": "2026-03-20", "last_engagement_date": "2026-03-19"},
        )
    )
    await api.set_today("2026-05-01")
    [row] = (await get_report(client, jfs["id"], "2026-03", "2026-03"))["months"]
    assert (row["css1"]["eligible"], row["css1"]["met"]) == (1, 1)
    assert (row["css2"]["eligible"], row["css2"]["met"]) == (1, 1)
    [row] = (await get_report(client, other_provider["id"], "2026-03", "2026-03"))["months"]
    assert (row["css1"]["eligible"], row["css2"]["eligible"], row["css2"]["met"]) == (0, 1, 0)
    [row] = (await get_report(client, ses["id"], "2026-03", "2026-03"))["months"]
    assert (row["css1"]["eligible"], row["css1"]["met"]) == (1, 1)
    assert (row["css2"]["eligible"], row["css2"]["met"]) == (1, 1)


async def test_programme_without_standards_is_not_measured_domain_7(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §7: CWP has no CSS 1 or CSS 2: its months are not measured, no deduction."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract(programme="CWP")
    rid = (await create_referral(client, programme="CWP"))["id"]
    ok(await act(client, rid, "accept"))
    ok(await act(client, rid, "start", {"start_date": "2026-03-02"}))
    await api.set_today("2026-04-01")
    [row] = (await get_report(client, contract["id"], "2026-03", "2026-03"))["months"]
    assert row["css1"]["rag"] == row["css2"]["rag"] == "not_measured"
    assert row["deduction_pence"] == 0
    assert row["fee_payable_pence"] == contract["monthly_service_fee_pence"]


async def test_dns_meeting_after_the_8th_working_day_is_late_jfs_7_44(
    client: AsyncClient, api: Api
) -> None:
    """JFS 3.31-3.32, 7.44: a did-not-start with a meeting date is CSS 1 eligible; a meeting
    on Fri 13 Mar for a referral on Mon 2 Mar (due Thu 12 Mar) is late, though recorded in
    time for CSS 2 (due Mon 16 Mar)."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract()
    rid = (await create_referral(client))["id"]
    ok(await act(client, rid, "acknowledge"))
    await api.set_today("2026-03-16")
    ok(await act(client, rid, "did-not-start", {"initial_meeting_date": "2026-03-13"}))
    [row] = (await get_report(client, contract["id"], "2026-03", "2026-03"))["months"]
    assert (row["css1"]["eligible"], row["css1"]["met"], row["css1"]["rag"]) == (1, 0, "red")
    assert (row["css2"]["eligible"], row["css2"]["met"], row["css2"]["rag"]) == (1, 1, "green")


async def test_report_default_range_is_the_twelve_months_to_this_one(
    client: AsyncClient, api: Api
) -> None:
    """Without ``from`` and ``to``: the twelve months ending with this month."""
    await api.set_today("2026-03-02")
    contract = await api.create_contract()
    response = await client.get(f"/v1/contracts/{contract['id']}/service-credits", headers=POST)
    months = [m["month"] for m in ok(response)["months"]]
    assert months == [f"2025-{n:02d}" for n in range(4, 13)] + ["2026-01", "2026-02", "2026-03"]
