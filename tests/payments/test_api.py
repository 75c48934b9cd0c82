"""Payment runs over HTTP (domain.md §8, §9; api-contract.md "Claims and payments").

Sources: GEN 16 (funding elements: monthly service fee, attachment, job outcome,
sustainment), JFS 6.01-6.03 (the JFS service fee, payable monthly for each month in which
referrals are made, less service credits), JFS 6.07-6.10 and 7.44 (service credits), PRaP 11.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text

from tests.claim_support import (
    CLERK_A,
    CLERK_B,
    DAY0,
    FEES,
    accepted_referral,
    claim_ok,
    contract,
    get_claim,
    payment_run,
    payment_run_ok,
    reject,
    started_referral,
    validate,
)
from tests.helpers import (
    ADMIN,
    JCP,
    OTHER_PROVIDER,
    POST,
    PROVIDER,
    PROVIDER_A,
    Api,
    act,
    assert_problem,
    auth,
)

JFS_FEE = 333_333  # 5% of it is 16,666.65p: rounded half up once to 16,667p (domain.md §9)
# March 2026's result is final from the day after the 10th working day after 31 March
# (3 and 6 April are holidays: 16 April), so its fee is payable from 17 April (domain.md §9).
MARCH_FINAL = "2026-04-17"


def _claim_lines(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {line["claim_id"]: line for line in run["lines"] if line["kind"] == "claim"}


def _fee_lines(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    fees = [line for line in run["lines"] if line["kind"] == "service_fee"]
    assert len({line["contract_id"] for line in fees}) == len(fees), "one fee month each"
    return {line["contract_id"]: line for line in fees}


def _fees_by_month(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (line["contract_id"], line["fee_month"]): line
        for line in run["lines"]
        if line["kind"] == "service_fee"
    }


def _check_total(run: dict[str, Any]) -> None:
    """api-contract.md: total_pence is the sum of the lines' amount_pence."""
    assert run["total_pence"] == sum(line["amount_pence"] for line in run["lines"])


async def _ses_claims(client: AsyncClient, api: Api) -> dict[str, Any]:
    """An SES contract (P100) with two validated claims, one submitted and one rejected,
    and a P200 SES contract with one validated claim."""
    await api.set_today(DAY0)
    ses = await contract(api, "SES")
    ses_b = await contract(api, "SES", provider_id=OTHER_PROVIDER)
    r1 = await started_referral(client, i=1, programme="SES")
    r2 = await started_referral(client, i=2, programme="SES")
    r3 = await started_referral(client, i=3, programme="SES")
    r4 = await started_referral(client, i=4, programme="SES")
    rb = await started_referral(client, i=5, programme="SES", provider_id=OTHER_PROVIDER)
    await api.set_today("2026-03-20")
    v1 = await validate(client, (await claim_ok(client, r1["id"], "attachment"))["id"])
    v2 = await validate(
        client,
        (
            await claim_ok(
                client,
                r2["id"],
                "job_outcome",
                job_start_date="2026-03-10",
                hours_per_week=20,
                basis="expected_13_weeks",
            )
        )["id"],
    )
    submitted = await claim_ok(client, r3["id"], "attachment")
    rejected = await claim_ok(client, r4["id"], "attachment")
    assert (await reject(client, rejected["id"])).status_code == 200
    vb = await validate(
        client, (await claim_ok(client, rb["id"], "attachment", headers=CLERK_B))["id"]
    )
    return {
        "ses": ses,
        "ses_b": ses_b,
        "v1": v1,
        "v2": v2,
        "submitted": submitted,
        "rejected": rejected,
        "vb": vb,
        "r3": r3,
    }


async def _jfs_red_css2_month(client: AsyncClient, api: Api) -> dict[str, Any]:
    """A JFS contract (P100) whose March 2026 cohort has CSS 1 green and CSS 2 red.

    Both referrals are made Monday 2 March 2026 (8th working day after: 12 March; 10th: 16
    March). R1's start (2 March) is recorded the same day; R2's start (3 March, so the initial
    meeting was in time) is recorded on 18 March, after the CSS 2 deadline. CSS 1: 2/2 green;
    CSS 2: 1/2 = 50% red; February has no referrals, so 5% (JFS 6.08)."""
    await api.set_today(DAY0)
    jfs = await contract(api, "JFS", monthly_service_fee_pence=JFS_FEE)
    await started_referral(client, i=11, programme="JFS")
    late = await accepted_referral(client, i=12, programme="JFS")
    await api.set_today("2026-03-18")
    response = await act(client, late["id"], "start", {"start_date": "2026-03-03"})
    assert response.status_code == 200, response.text
    return jfs


# --- claims in a run (domain.md §8) ----------------------------------------------------------


async def test_run_pays_every_validated_claim_once(client: AsyncClient, api: Api) -> None:
    """domain.md §8: a payment run pays every validated, unpaid claim (of every provider),
    one line each `{"kind": "claim", "claim_id", "contract_id", "amount_pence"}`; the claims
    become `paid` with the run's id; submitted and rejected claims are not paid; total_pence is
    the sum of the lines."""
    c = await _ses_claims(client, api)
    response = await payment_run(client, "2026-03")
    assert response.status_code == 201, response.text
    run = response.json()
    assert response.headers["location"] == f"/v1/payment-runs/{run['id']}"
    assert run["month"] == "2026-03"
    lines = _claim_lines(run)
    assert set(lines) == {c["v1"]["id"], c["v2"]["id"], c["vb"]["id"]}
    assert len(run["lines"]) == 3  # SES funds no service fee
    assert lines[c["v1"]["id"]]["contract_id"] == c["ses"]["id"]
    assert lines[c["v1"]["id"]]["amount_pence"] == FEES["attachment_fee_pence"]
    assert lines[c["v2"]["id"]]["amount_pence"] == FEES["job_outcome_fee_pence"]
    assert lines[c["vb"]["id"]]["contract_id"] == c["ses_b"]["id"]
    _check_total(run)
    assert run["total_pence"] == 2 * FEES["attachment_fee_pence"] + FEES["job_outcome_fee_pence"]
    for key in ("v1", "v2", "vb"):
        paid = await get_claim(client, c[key]["id"])
        assert paid["status"] == "paid"
        assert paid["payment_run_id"] == run["id"]
        assert paid["paid_at"] is not None
    assert (await get_claim(client, c["submitted"]["id"]))["status"] == "submitted"
    assert (await get_claim(client, c["rejected"]["id"]))["status"] == "rejected"
    paid_filter = (await client.get("/v1/claims?status=paid", headers=POST)).json()["items"]
    assert len(paid_filter) == 3


async def test_second_run_for_the_month_carries_only_what_is_new(
    client: AsyncClient, api: Api
) -> None:
    """api-contract.md: a later run for the same month carries only what is new: at once it
    is empty (total 0); after another claim is validated, only that claim."""
    c = await _ses_claims(client, api)
    await payment_run_ok(client, "2026-03")
    again = await payment_run_ok(client, "2026-03")
    assert again["lines"] == []
    assert again["total_pence"] == 0
    await validate(client, c["submitted"]["id"])
    third = await payment_run_ok(client, "2026-03")
    assert list(_claim_lines(third)) == [c["submitted"]["id"]]
    assert len(third["lines"]) == 1
    assert third["total_pence"] == FEES["attachment_fee_pence"]
    paid = await get_claim(client, c["submitted"]["id"])
    assert paid["payment_run_id"] == third["id"]


async def test_later_month_never_pays_a_claim_twice(client: AsyncClient, api: Api) -> None:
    """domain.md §8: a claim is paid in one run only, whatever the month of a later run; a
    paid claim cannot be validated or rejected again."""
    c = await _ses_claims(client, api)
    first = await payment_run_ok(client, "2026-03")
    await api.set_today("2026-04-02")
    april = await payment_run_ok(client, "2026-04")
    assert april["lines"] == []
    march_again = await payment_run_ok(client, "2026-03")
    assert march_again["lines"] == []
    paid = await get_claim(client, c["v1"]["id"])
    assert paid["payment_run_id"] == first["id"]
    again = await client.post(f"/v1/claims/{c['v1']['id']}/validate", headers=POST, json={})
    assert_problem(again, 409, "invalid-transition")
    assert_problem(await reject(client, c["v1"]["id"]), 409, "invalid-transition")
    history = (await client.get(f"/v1/claims/{c['v1']['id']}/history", headers=POST)).json()
    assert [e["type"] for e in history["items"]] == ["submitted", "validated", "paid"]


async def test_paid_claims_still_block_duplicates_and_count_for_sustainment(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §8: one claim of each type per referral (a paid one counts); a paid job
    outcome is a validated one for the sustainment (PRaP 11)."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-03-20")
    outcome = await claim_ok(
        client,
        referral["id"],
        "job_outcome",
        job_start_date="2026-03-10",
        hours_per_week=16,
        basis="expected_13_weeks",
    )
    await validate(client, outcome["id"])
    await payment_run_ok(client, "2026-03")
    assert (await get_claim(client, outcome["id"]))["status"] == "paid"
    dup = await client.post(
        "/v1/claims",
        headers=CLERK_A,
        json={
            "referral_id": referral["id"],
            "claim_type": "job_outcome",
            "job_start_date": "2026-03-10",
            "hours_per_week": 16,
            "basis": "expected_13_weeks",
        },
    )
    assert_problem(dup, 409, "duplicate-claim")
    await api.set_today("2026-09-08")  # job start + 26 weeks
    sustainment = await claim_ok(client, referral["id"], "sustainment", weeks_in_work_last_30=27)
    assert sustainment["job_start_date"] == "2026-03-10"


# --- the JFS service fee (JFS 6.01-6.03, 6.08; domain.md §9) ---------------------------------


async def test_service_fee_less_service_credit_deduction(client: AsyncClient, api: Api) -> None:
    """JFS 6.01-6.03, 6.08, domain.md §9: a JFS contract with referrals in the month gets a
    `service_fee` line: fee 333,333p, CSS 2 red (1 of 2 in time) and not red the month before
    → 5%, rounded half up once: deduction 16,667p, paid 316,666p. The figures agree with the
    contract's service-credit report."""
    jfs = await _jfs_red_css2_month(client, api)
    credits = await client.get(
        f"/v1/contracts/{jfs['id']}/service-credits?from=2026-03&to=2026-03", headers=POST
    )
    assert credits.status_code == 200, credits.text
    month = credits.json()["months"][0]
    assert month["css1"]["rag"] == "green"
    assert (month["css2"]["eligible"], month["css2"]["met"], month["css2"]["rag"]) == (2, 1, "red")
    assert month["deduction_pence"] == 16_667
    await api.set_today(MARCH_FINAL)
    run = await payment_run_ok(client, "2026-03")
    fees = _fee_lines(run)
    assert list(fees) == [jfs["id"]]
    line = fees[jfs["id"]]
    assert line["kind"] == "service_fee"
    assert line["fee_month"] == "2026-03"
    assert line["deduction_pence"] == 16_667
    # The CSS figures it was paid on (JFS 6.09: so the fee can be explained later).
    assert line["figures"]["css2"] == {
        "eligible": 2,
        "met": 1,
        "percent": "50.00",
        "rag": "red",
        "deduction_percent": 5,
    }
    assert line["figures"]["css1"]["rag"] == "green"
    assert line["figures"]["final_from"] == MARCH_FINAL
    assert line["amount_pence"] == JFS_FEE - 16_667 == 316_666
    assert line["amount_pence"] == month["fee_payable_pence"]
    assert run["total_pence"] == 316_666
    _check_total(run)


async def test_service_fee_without_deduction_and_only_for_months_with_referrals(
    client: AsyncClient, api: Api
) -> None:
    """JFS 6.03: the fee is payable for each month in which referrals are made: a JFS
    contract with referrals (all starts recorded in time: CSS green, no deduction) gets the
    full fee; a JFS contract with no referral that month gets no line; programmes without a
    service fee (SES) get none (domain.md §7)."""
    await api.set_today(DAY0)
    busy = await contract(api, "JFS", monthly_service_fee_pence=500_000)
    await contract(api, "JFS", provider_id=OTHER_PROVIDER, monthly_service_fee_pence=700_000)
    await contract(api, "SES")
    await started_referral(client, i=1, programme="JFS")
    await started_referral(client, i=2, programme="SES")
    await api.set_today(MARCH_FINAL)
    run = await payment_run_ok(client, "2026-03")
    fees = _fee_lines(run)
    assert list(fees) == [busy["id"]]
    assert fees[busy["id"]]["deduction_pence"] == 0
    assert fees[busy["id"]]["amount_pence"] == 500_000
    assert len(run["lines"]) == 1
    assert run["total_pence"] == 500_000
    # No referral in February: no fee for February.
    february = await payment_run_ok(client, "2026-02")
    assert february["lines"] == []


async def test_service_fee_paid_once_per_month(client: AsyncClient, api: Api) -> None:
    """JFS 6.03, 6.06, api-contract.md: a contract's fee for a month is paid in one run only,
    in arrears: runs before the month is final hold it (`held_fees` with `payable_from`), the
    first run on or after that day pays every final unpaid month up to its own (`fee_month`
    on each line), and no later run pays it again; a run for an earlier month pays only
    months up to that one."""
    await api.set_today(DAY0)
    first_contract = await contract(api, "JFS", monthly_service_fee_pence=400_000)
    second_contract = await contract(
        api, "JFS", provider_id=OTHER_PROVIDER, monthly_service_fee_pence=600_000
    )
    await started_referral(client, i=1, programme="JFS")
    run1 = await payment_run_ok(client, "2026-03")
    assert run1["lines"] == []
    assert run1["total_pence"] == 0
    assert run1["held_fees"] == [
        {
            "contract_id": first_contract["id"],
            "provider_id": PROVIDER,
            "fee_month": "2026-03",
            "payable_from": MARCH_FINAL,
        }
    ]
    # The provider sees its own held fee in the run (its remittance-to-be), the other none.
    mine = await client.get(f"/v1/payment-runs/{run1['id']}", headers=CLERK_A)
    assert mine.status_code == 200, mine.text
    assert [h["fee_month"] for h in mine.json()["held_fees"]] == ["2026-03"]
    assert_problem(
        await client.get(f"/v1/payment-runs/{run1['id']}", headers=CLERK_B), 404, "not-found"
    )
    await api.set_today("2026-03-04")
    await started_referral(client, i=2, programme="JFS", provider_id=OTHER_PROVIDER)
    await api.set_today("2026-04-01")
    await started_referral(client, i=3, programme="JFS")
    early = await payment_run_ok(client, "2026-04")
    assert early["lines"] == []
    # 30 April is a Thursday; 4 May is a holiday: the 10th working day after is 15 May.
    assert {(h["contract_id"], h["fee_month"], h["payable_from"]) for h in early["held_fees"]} == {
        (first_contract["id"], "2026-03", MARCH_FINAL),
        (second_contract["id"], "2026-03", MARCH_FINAL),
        (first_contract["id"], "2026-04", "2026-05-16"),
    }
    await api.set_today("2026-04-16")  # the last provisional day
    assert (await payment_run_ok(client, "2026-04"))["lines"] == []
    await api.set_today(MARCH_FINAL)
    paid = await payment_run_ok(client, "2026-04")
    assert {k: v["amount_pence"] for k, v in _fees_by_month(paid).items()} == {
        (first_contract["id"], "2026-03"): 400_000,
        (second_contract["id"], "2026-03"): 600_000,
    }
    assert [(h["fee_month"], h["payable_from"]) for h in paid["held_fees"]] == [
        ("2026-04", "2026-05-16")
    ]
    assert (await payment_run_ok(client, "2026-04"))["lines"] == []
    await api.set_today("2026-05-16")
    assert (await payment_run_ok(client, "2026-03"))["lines"] == []  # April is after March
    may = await payment_run_ok(client, "2026-05")
    assert list(_fees_by_month(may)) == [(first_contract["id"], "2026-04")]
    assert may["held_fees"] == []
    assert (await payment_run_ok(client, "2026-05"))["lines"] == []


async def test_run_with_claims_and_fees(client: AsyncClient, api: Api) -> None:
    """domain.md §8: one run carries both the validated claims and the month's fees; the
    total is the sum of every line's amount (fees net of deductions)."""
    c = await _ses_claims(client, api)
    await api.set_today(DAY0)
    jfs = await _jfs_red_css2_month(client, api)
    await api.set_today(MARCH_FINAL)
    run = await payment_run_ok(client, "2026-03")
    assert set(_claim_lines(run)) == {c["v1"]["id"], c["v2"]["id"], c["vb"]["id"]}
    assert _fee_lines(run)[jfs["id"]]["amount_pence"] == 316_666
    _check_total(run)
    assert run["total_pence"] == (
        2 * FEES["attachment_fee_pence"] + FEES["job_outcome_fee_pence"] + 316_666
    )


async def test_deduction_red_two_months_running(client: AsyncClient, api: Api) -> None:
    """JFS 6.08, domain.md §9: CSS 2 red in February and red again in March → March's fee
    loses 10% (33,333.3p → 33,333p); February's fee, red after a month not measured, 5%; one run
    once March is final pays both months, each on its own line."""
    await api.set_today("2026-02-02")  # a Monday; 10th working day after: 16 February
    jfs = await contract(api, "JFS", monthly_service_fee_pence=JFS_FEE)
    await started_referral(client, i=21, programme="JFS")
    late = await accepted_referral(client, i=22, programme="JFS")
    await api.set_today("2026-02-18")
    response = await act(client, late["id"], "start", {"start_date": "2026-02-03"})
    assert response.status_code == 200, response.text
    await api.set_today(DAY0)
    await started_referral(client, i=11, programme="JFS")
    late = await accepted_referral(client, i=12, programme="JFS")
    await api.set_today("2026-03-18")
    response = await act(client, late["id"], "start", {"start_date": "2026-03-03"})
    assert response.status_code == 200, response.text
    await api.set_today(MARCH_FINAL)
    fees = _fees_by_month(await payment_run_ok(client, "2026-03"))
    march, february = fees[(jfs["id"], "2026-03")], fees[(jfs["id"], "2026-02")]
    assert (march["deduction_pence"], march["amount_pence"]) == (33_333, 300_000)
    assert (february["deduction_pence"], february["amount_pence"]) == (16_667, 316_666)


async def test_create_payment_run_is_idempotent(client: AsyncClient, api: Api) -> None:
    """api-contract.md (Writes): the same Idempotency-Key and body returns the first run
    again (its lines, not a new empty run) and makes no second run."""
    c = await _ses_claims(client, api)
    headers = {**POST, "Idempotency-Key": "run-2026-03"}
    first = await client.post("/v1/payment-runs", headers=headers, json={"month": "2026-03"})
    second = await client.post("/v1/payment-runs", headers=headers, json={"month": "2026-03"})
    assert first.status_code == second.status_code == 201, second.text
    assert first.json() == second.json()
    assert c["v1"]["id"] in _claim_lines(second.json())
    runs = (await client.get("/v1/payment-runs", headers=POST)).json()["items"]
    assert [r["id"] for r in runs] == [first.json()["id"]]
    other = await client.post("/v1/payment-runs", headers=headers, json={"month": "2026-02"})
    assert_problem(other, 422, "idempotency-key-reused")


# --- month, roles, validation ----------------------------------------------------------------


async def test_month_after_the_current_one_is_out_of_range(client: AsyncClient, api: Api) -> None:
    """api-contract.md: a run may be made for any month up to the current one; a later month
    is 422 `date-out-of-range`; a malformed month is `validation-error`."""
    await api.set_today("2026-03-31")
    assert_problem(await payment_run(client, "2026-04"), 422, "date-out-of-range")
    assert_problem(await payment_run(client, "2027-01"), 422, "date-out-of-range")
    assert (await payment_run(client, "2026-03")).status_code == 201
    assert (await payment_run(client, "2025-12")).status_code == 201
    for month in ("2026-13", "2026-3", "March", ""):
        assert_problem(await payment_run(client, month), 422, "validation-error")
    missing = await client.post("/v1/payment-runs", headers=POST, json={})
    assert_problem(missing, 422, "validation-error")


async def test_current_month_is_the_uk_month(client: AsyncClient, api: Api) -> None:
    """domain.md §3 (UK local dates), api-contract.md: at 22:30 UTC on 31 March 2026 it is
    still March in London, so April is out of range; at 23:30 UTC it is 1 April (BST)."""
    await api.set_clock("2026-03-31T22:30:00Z")
    assert_problem(await payment_run(client, "2026-04"), 422, "date-out-of-range")
    await api.set_clock("2026-03-31T23:30:00Z")
    assert (await payment_run(client, "2026-04")).status_code == 201


async def test_only_post_runs_payments(client: AsyncClient, api: Api) -> None:
    """domain.md §1: POST runs payments; providers (even with scope claims), JCP and admin
    are 403 and nothing is paid."""
    c = await _ses_claims(client, api)
    for headers in (CLERK_A, PROVIDER_A, JCP, ADMIN):
        assert_problem(await payment_run(client, "2026-03", headers), 403, "forbidden")
    assert (await get_claim(client, c["v1"]["id"]))["status"] == "validated"
    listed = await client.get("/v1/payment-runs", headers=POST)
    assert listed.json()["items"] == []


# --- racing runs (api-contract.md: paid in one run only) -------------------------------------


@pytest.mark.parametrize("round_", range(3))
async def test_racing_payment_runs_pay_everything_once(racing: AsyncClient, round_: int) -> None:
    """api-contract.md: a claim or a contract's fee for a month is paid in one run only, also
    when two runs for the month race: across both runs every validated claim and the JFS fee
    appear on exactly one line, and each claim names the run that paid it."""
    client = racing
    api = Api(client)
    c = await _ses_claims(client, api)
    await api.set_today(DAY0)
    jfs = await _jfs_red_css2_month(client, api)
    await api.set_today(MARCH_FINAL)
    racing.in_flight.peak = 0  # type: ignore[attr-defined]
    responses = await asyncio.gather(payment_run(client, "2026-03"), payment_run(client, "2026-03"))
    assert racing.in_flight.peak >= 2, "the runs did not overlap"  # type: ignore[attr-defined]
    assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
    runs = [r.json() for r in responses]
    claim_counts = Counter(
        line["claim_id"] for run in runs for line in run["lines"] if line["kind"] == "claim"
    )
    assert claim_counts == Counter({c["v1"]["id"]: 1, c["v2"]["id"]: 1, c["vb"]["id"]: 1})
    fee_counts = Counter(
        line["contract_id"]
        for run in runs
        for line in run["lines"]
        if line["kind"] == "service_fee"
    )
    assert fee_counts == Counter({jfs["id"]: 1})
    for run in runs:
        _check_total(run)
        for claim_id in _claim_lines(run):
            assert (await get_claim(client, claim_id))["payment_run_id"] == run["id"]
        stored = (await client.get(f"/v1/payment-runs/{run['id']}", headers=POST)).json()
        assert stored["lines"] == run["lines"]
        assert stored["total_pence"] == run["total_pence"]
    for key in ("v1", "v2", "vb"):
        history = (await client.get(f"/v1/claims/{c[key]['id']}/history", headers=POST)).json()
        assert [e["type"] for e in history["items"]] == ["submitted", "validated", "paid"]
    assert sum(run["total_pence"] for run in runs) == (
        2 * FEES["attachment_fee_pence"] + FEES["job_outcome_fee_pence"] + 316_666
    )


ON_POSTGRES = os.environ.get("PRAP_TEST_DATABASE_URL", "").startswith("postgresql")


@pytest.mark.postgres_only
@pytest.mark.skipif(not ON_POSTGRES, reason="orders two transactions with PostgreSQL row locks")
async def test_payment_run_racing_a_back_out_never_pays_a_voided_claim(
    app: FastAPI, client: AsyncClient, api: Api
) -> None:
    """SES 3.15 / domain.md §8: a claim voided by a back-out is never paid afterwards; a claim
    the run paid first is voided by the back-out and recovered by the next run, once, even
    when a payment run and the back-out overlap.

    The interleaving is made deterministic with a real PostgreSQL lock, nothing of the app
    replaced: an uncommitted row holding the payment-line id the run will take next makes the
    run's INSERT wait after it has read the validated claims; the back-out then runs and
    commits; the blocking row is rolled back and the run carries on."""
    await api.set_today(DAY0)
    ses = await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    attachment = await claim_ok(client, referral["id"], "attachment")
    await validate(client, attachment["id"])
    engine = app.state.engine
    async with engine.connect() as blocker:
        transaction = await blocker.begin()
        sequence = await blocker.scalar(
            text("SELECT pg_get_serial_sequence('payment_lines', 'id')")
        )
        row = (await blocker.execute(text(f"SELECT last_value, is_called FROM {sequence}"))).one()
        next_id = row.last_value + 1 if row.is_called else row.last_value
        await blocker.execute(
            text(
                "INSERT INTO payment_runs (id, month, created_at, created_by, total_pence) "
                "VALUES ('BLOCKER0000000000000000000', '1999-01', now(), 'test', 0)"
            )
        )
        await blocker.execute(
            text(
                "INSERT INTO payment_lines (id, run_id, kind, claim_id, contract_id, "
                "provider_id, month, amount_pence, deduction_pence) VALUES (:id, "
                "'BLOCKER0000000000000000000', 'service_fee', NULL, :contract, 'P100', "
                "'1999-01', 0, 0)"
            ),
            {"id": next_id, "contract": ses["id"]},
        )
        run_task = asyncio.create_task(payment_run(client, "2026-03"))
        async with engine.connect() as watcher:
            for _ in range(100):
                waiting = await watcher.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database() AND wait_event_type = 'Lock'"
                    )
                )
                await watcher.rollback()  # pg_stat_activity is a per-transaction snapshot
                if waiting:
                    break
                await asyncio.sleep(0.05)
        # (A run that locks its claims first would make the back-out wait for it instead:
        # give the back-out a moment, then release the run either way.)
        back_out_task = asyncio.create_task(
            act(client, referral["id"], "back-out", {"reason": "error"}, headers=POST)
        )
        await asyncio.wait({back_out_task}, timeout=3)
        await transaction.rollback()
    back_out = await back_out_task
    assert back_out.status_code == 200, back_out.text
    run = await run_task
    assert run.status_code == 201, run.text
    on_lines = attachment["id"] in _claim_lines(run.json())
    current = await get_claim(client, attachment["id"])
    history = (await client.get(f"/v1/claims/{attachment['id']}/history", headers=POST)).json()[
        "items"
    ]
    types = [e["type"] for e in history]
    # The back-out voids the claim whether or not the run paid it first (domain.md §8).
    assert current["status"] == "voided"
    recovery = [
        line
        for line in (await payment_run_ok(client, "2026-03"))["lines"]
        if line["kind"] == "recovery"
    ]
    if on_lines:
        # Paid first, then voided: the next run recovers it, once.
        assert types[-2:] == ["paid", "voided"], types
        assert [line["claim_id"] for line in recovery] == [attachment["id"]]
    else:
        # Voided first: never paid, nothing to recover.
        assert "paid" not in types, types
        assert recovery == []


# --- reading runs and the remittance ---------------------------------------------------------


async def test_get_payment_run_by_role(client: AsyncClient, api: Api) -> None:
    """domain.md §1, api-contract.md: POST and admin see every line of a run; a provider sees
    only its own lines (its remittance, total of those lines) and a run with none of its
    lines is 404 for it, as an unknown run is; JCP is 403."""
    c = await _ses_claims(client, api)
    run = await payment_run_ok(client, "2026-03")
    for headers in (POST, ADMIN):
        body = (await client.get(f"/v1/payment-runs/{run['id']}", headers=headers)).json()
        assert body["lines"] == run["lines"]
        assert body["total_pence"] == run["total_pence"]
    mine = await client.get(f"/v1/payment-runs/{run['id']}", headers=CLERK_A)
    assert mine.status_code == 200, mine.text
    assert set(_claim_lines(mine.json())) == {c["v1"]["id"], c["v2"]["id"]}
    assert {line["contract_id"] for line in mine.json()["lines"]} == {c["ses"]["id"]}
    _check_total(mine.json())
    theirs = (await client.get(f"/v1/payment-runs/{run['id']}", headers=CLERK_B)).json()
    assert set(_claim_lines(theirs)) == {c["vb"]["id"]}
    # A provider with no line in the run: 404, exactly as an unknown run.
    await api.set_today("2026-03-25")
    await validate(client, c["submitted"]["id"])
    only_a = await payment_run_ok(client, "2026-03")
    hidden = await client.get(f"/v1/payment-runs/{only_a['id']}", headers=CLERK_B)
    assert_problem(hidden, 404, "not-found")
    unknown = await client.get("/v1/payment-runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ", headers=CLERK_B)
    assert_problem(unknown, 404, "not-found")
    assert_problem(
        await client.get("/v1/payment-runs/01ZZZZZZZZZZZZZZZZZZZZZZZZ", headers=POST),
        404,
        "not-found",
    )
    assert_problem(await client.get(f"/v1/payment-runs/{run['id']}", headers=JCP), 403, "forbidden")
    referrals_only = auth("provider", sub="deliverer", provider_id=PROVIDER, scopes=("referrals",))
    assert_problem(
        await client.get(f"/v1/payment-runs/{run['id']}", headers=referrals_only),
        403,
        "forbidden",
    )


async def test_remittance_csv(client: AsyncClient, api: Api) -> None:
    """api-contract.md / GET /v1/payment-runs/{id} with `Accept: text/csv`: the remittance,
    a header and one row per line (a provider's only its own lines)."""
    c = await _ses_claims(client, api)
    await api.set_today(DAY0)
    jfs = await _jfs_red_css2_month(client, api)
    await api.set_today(MARCH_FINAL)
    run = await payment_run_ok(client, "2026-03")
    response = await client.get(
        f"/v1/payment-runs/{run['id']}", headers={**POST, "Accept": "text/csv"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(run["lines"]) == 4
    by_claim = {row["claim_id"]: row for row in rows if row["kind"] == "claim"}
    assert set(by_claim) == {c["v1"]["id"], c["v2"]["id"], c["vb"]["id"]}
    assert int(by_claim[c["v1"]["id"]]["amount_pence"]) == FEES["attachment_fee_pence"]
    (fee,) = [row for row in rows if row["kind"] == "service_fee"]
    assert fee["contract_id"] == jfs["id"]
    assert (int(fee["amount_pence"]), int(fee["deduction_pence"])) == (316_666, 16_667)
    assert sum(int(row["amount_pence"]) for row in rows) == run["total_pence"]
    mine = await client.get(
        f"/v1/payment-runs/{run['id']}", headers={**CLERK_B, "Accept": "text/csv"}
    )
    mine_rows = list(csv.DictReader(io.StringIO(mine.text)))
    assert [row["claim_id"] for row in mine_rows] == [c["vb"]["id"]]
    assert all(row["provider_id"] == OTHER_PROVIDER for row in mine_rows)


async def test_list_payment_runs_post_and_admin_only(client: AsyncClient, api: Api) -> None:
    """api-contract.md: the list of runs is for POST and admin; providers and JCP are 403;
    pages follow `limit` and `next_cursor`."""
    await api.set_today(DAY0)
    created = [
        (await payment_run_ok(client, month))["id"] for month in ("2026-01", "2026-02", "2026-03")
    ]
    for headers in (POST, ADMIN):
        body = (await client.get("/v1/payment-runs", headers=headers)).json()
        assert sorted(item["id"] for item in body["items"]) == sorted(created)
        assert {item["month"] for item in body["items"]} == {"2026-01", "2026-02", "2026-03"}
    page = (await client.get("/v1/payment-runs?limit=2", headers=POST)).json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = (
        await client.get(f"/v1/payment-runs?limit=2&cursor={page['next_cursor']}", headers=POST)
    ).json()
    assert len(rest["items"]) == 1
    assert rest["next_cursor"] is None
    seen = [i["id"] for i in page["items"] + rest["items"]]
    assert sorted(seen) == sorted(created)
    for headers in (CLERK_A, PROVIDER_A, JCP):
        assert_problem(await client.get("/v1/payment-runs", headers=headers), 403, "forbidden")
