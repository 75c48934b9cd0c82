"""Claims over HTTP (domain.md §1, §8; api-contract.md "Claims and payments").

Sources: GEN 16 (funding elements), GEN 18 (amounts set in the contract), GEN 122
(segregation of duties), SES 3.40 (attachment fee on the start), SES 3.15 / JFS 3.37
(back-out), JFS 6.01 (JFS is a 100% service fee), PRaP 11 (FND appendix 2: job outcome
8/16 hours, lasted or expected to last 13 weeks; sustainment 26 weeks out of the last 30).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from httpx import AsyncClient

from tests.claim_support import (
    CLERK_A,
    CLERK_B,
    DAY0,
    FEES,
    accepted_referral,
    claim,
    claim_history,
    claim_ok,
    contract,
    end_referral,
    get_claim,
    reject,
    started_referral,
    validate,
    validated_outcome,
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
    create_referral,
)

JOB_START = "2026-03-10"  # a job starting eight days into provision (start 2026-03-02)
JOB_START_PLUS_13W = "2026-06-09"  # JOB_START + 91 days
JOB_START_PLUS_26W = "2026-09-08"  # JOB_START + 182 days

OUTCOME: dict[str, Any] = {
    "job_start_date": JOB_START,
    "hours_per_week": 16,
    "basis": "expected_13_weeks",
}


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


# --- who may claim (domain.md §1, api-contract.md) -------------------------------------------


async def test_only_provider_with_claims_scope_may_claim(client: AsyncClient, api: Api) -> None:
    """domain.md §1 / api-contract.md: createClaim needs role provider and scope `claims`;
    delivery staff with scope `referrals` only, JCP, POST and admin are 403."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    referrals_only = auth("provider", sub="deliverer", provider_id=PROVIDER, scopes=("referrals",))
    for headers in (referrals_only, JCP, POST, ADMIN):
        response = await claim(client, referral["id"], "attachment", headers=headers)
        assert_problem(response, 403, "forbidden")
    response = await claim(client, referral["id"], "attachment", headers=CLERK_A)
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/claims/{response.json()['id']}"


async def test_claim_on_another_providers_referral_is_not_found(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §1: a provider never learns another provider's referral exists: 404, as for
    an id that does not exist."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    await contract(api, "SES", provider_id=OTHER_PROVIDER)
    referral = await started_referral(client, i=1, programme="SES")
    other = await claim(client, referral["id"], "attachment", headers=CLERK_B)
    missing = await claim(client, "01ZZZZZZZZZZZZZZZZZZZZZZZZ", "attachment", headers=CLERK_B)
    assert_problem(other, 404, "not-found")
    assert_problem(missing, 404, "not-found")
    assert other.json()["detail"] == missing.json()["detail"]
    listed = await client.get("/v1/claims", headers=POST)
    assert listed.json()["items"] == []


async def test_claim_body_shape_is_validation_error(client: AsyncClient, api: Api) -> None:
    """api-contract.md Errors: an unknown claim_type or basis, or a missing referral_id, is
    `validation-error`."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    bad_type = await claim(client, referral["id"], "bonus")
    assert_problem(bad_type, 422, "validation-error")
    bad_basis = await claim(
        client, referral["id"], "job_outcome", job_start_date=DAY0, hours_per_week=16, basis="x"
    )
    assert_problem(bad_basis, 422, "validation-error")
    no_referral = await client.post(
        "/v1/claims", headers=CLERK_A, json={"claim_type": "attachment"}
    )
    body = assert_problem(no_referral, 422, "validation-error")
    assert body["errors"]


# --- amounts and funding (GEN 16, GEN 18, JFS 6.01, domain.md §7) ----------------------------


async def test_amounts_come_from_the_contract_price_schedule(client: AsyncClient, api: Api) -> None:
    """GEN 18, domain.md §8: each claim's amount_pence is the contract's fee for that element
    (attachment, job outcome, sustainment); submitted claims carry the contract and referral."""
    await api.set_today(DAY0)
    ses = await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    attachment = await claim_ok(client, referral["id"], "attachment")
    assert attachment["amount_pence"] == FEES["attachment_fee_pence"]
    assert attachment["status"] == "submitted"
    assert attachment["contract_id"] == ses["id"]
    assert attachment["referral_id"] == referral["id"]
    assert attachment["provider_id"] == PROVIDER
    assert attachment["programme"] == "SES"
    await api.set_today("2026-03-20")
    outcome = await validated_outcome(client, referral["id"], JOB_START)
    assert outcome["amount_pence"] == FEES["job_outcome_fee_pence"]
    await api.set_today(JOB_START_PLUS_26W)
    sustainment = await claim_ok(
        client, referral["id"], "sustainment", weeks_in_work_last_30=26, evidence_reference="E-1"
    )
    assert sustainment["amount_pence"] == FEES["sustainment_fee_pence"]
    assert sustainment["job_start_date"] == JOB_START
    assert sustainment["evidence_reference"] == "E-1"
    assert (await get_claim(client, sustainment["id"]))["amount_pence"] == 111_213


async def test_amounts_differ_per_contract(client: AsyncClient, api: Api) -> None:
    """GEN 18: the amounts are those of the provider's own contract."""
    await api.set_today(DAY0)
    await contract(api, "SES", attachment_fee_pence=1_000)
    await contract(api, "SES", provider_id=OTHER_PROVIDER, attachment_fee_pence=2_000)
    mine = await started_referral(client, i=1, programme="SES")
    theirs = await started_referral(client, i=2, programme="SES", provider_id=OTHER_PROVIDER)
    assert (await claim_ok(client, mine["id"], "attachment"))["amount_pence"] == 1_000
    other = await claim_ok(client, theirs["id"], "attachment", headers=CLERK_B)
    assert other["amount_pence"] == 2_000


@pytest.mark.parametrize("claim_type", ["attachment", "job_outcome", "sustainment"])
async def test_jfs_funds_only_the_service_fee(
    client: AsyncClient, api: Api, claim_type: str
) -> None:
    """JFS 6.01-6.02, domain.md §7: JFS is a 100% service fee; any claim on a JFS referral is
    `claim-not-eligible`, even when the contract has prices for the elements."""
    await api.set_today(DAY0)
    await contract(api, "JFS")
    referral = await started_referral(client, i=1, programme="JFS")
    await api.set_today(JOB_START_PLUS_26W)
    fields: dict[str, Any] = {
        "attachment": {},
        "job_outcome": OUTCOME,
        "sustainment": {"weeks_in_work_last_30": 26},
    }[claim_type]
    response = await claim(client, referral["id"], claim_type, **fields)
    assert_problem(response, 422, "claim-not-eligible")
    assert (await client.get("/v1/claims", headers=POST)).json()["items"] == []


async def test_cwp_funds_attachment_only(client: AsyncClient, api: Api) -> None:
    """domain.md §7 (HTW): CWP pays an attachment fee only; job outcome and sustainment are
    `claim-not-eligible`."""
    await api.set_today(DAY0)
    await contract(api, "CWP")
    referral = await started_referral(client, i=1, programme="CWP")
    await api.set_today("2026-03-20")
    outcome = await claim(client, referral["id"], "job_outcome", **OUTCOME)
    assert_problem(outcome, 422, "claim-not-eligible")
    await api.set_today(JOB_START_PLUS_26W)
    sustainment = await claim(client, referral["id"], "sustainment", weeks_in_work_last_30=26)
    assert_problem(sustainment, 422, "claim-not-eligible")
    attachment = await claim_ok(client, referral["id"], "attachment")
    assert attachment["amount_pence"] == FEES["attachment_fee_pence"]


@pytest.mark.parametrize("programme", ["SES", "FND"])
async def test_ses_and_fnd_fund_all_three_elements(
    client: AsyncClient, api: Api, programme: str
) -> None:
    """GEN 16, domain.md §7: SES and FND pay attachment, job outcome and sustainment."""
    await api.set_today(DAY0)
    await contract(api, programme)
    referral = await started_referral(client, i=1, programme=programme)
    await claim_ok(client, referral["id"], "attachment")
    await api.set_today("2026-03-20")
    await validated_outcome(client, referral["id"], JOB_START)
    await api.set_today(JOB_START_PLUS_26W)
    await claim_ok(client, referral["id"], "sustainment", weeks_in_work_last_30=26)
    listed = (await client.get(f"/v1/claims?referral_id={referral['id']}", headers=POST)).json()
    assert sorted(c["claim_type"] for c in listed["items"]) == [
        "attachment",
        "job_outcome",
        "sustainment",
    ]


async def test_contract_without_a_price_for_the_element(client: AsyncClient, api: Api) -> None:
    """GEN 18: the amount is set in the contract; a contract with no attachment fee gives no
    attachment claim (`claim-not-eligible`)."""
    await api.set_today(DAY0)
    await contract(api, "SES", attachment_fee_pence=None)
    referral = await started_referral(client, i=1, programme="SES")
    assert_problem(await claim(client, referral["id"], "attachment"), 422, "claim-not-eligible")


# --- attachment (SES 3.40) -------------------------------------------------------------------


async def test_attachment_needs_a_start(client: AsyncClient, api: Api) -> None:
    """SES 3.40, domain.md §8: the attachment fee is claimed once the participant has
    started: `referred` and `accepted` are `claim-not-eligible`; a cancelled referral that
    never started too; `started` and `ended` are 201."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referred = await create_referral(client, nino="AB100001C", programme="SES")
    accepted = await accepted_referral(client, i=2, programme="SES")
    cancelled = await accepted_referral(client, i=3, programme="SES")
    response = await act(client, cancelled["id"], "did-not-start", {})
    assert response.status_code == 200, response.text
    started = await started_referral(client, i=4, programme="SES")
    ended = await started_referral(client, i=5, programme="SES")
    await api.set_today("2026-03-10")
    await end_referral(client, ended, "2026-03-09")
    for referral in (referred, accepted, cancelled):
        response = await claim(client, referral["id"], "attachment")
        assert_problem(response, 422, "claim-not-eligible")
    for referral in (started, ended):
        body = await claim_ok(client, referral["id"], "attachment")
        assert body["status"] == "submitted"


# --- job outcome (PRaP 11; domain.md §8) -----------------------------------------------------


async def test_job_outcome_needs_a_start(client: AsyncClient, api: Api) -> None:
    """domain.md §8: a job outcome is claimed on a `started` or `ended` referral only."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    accepted = await accepted_referral(client, i=1, programme="SES")
    response = await claim(
        client, accepted["id"], "job_outcome", **{**OUTCOME, "job_start_date": DAY0}
    )
    assert_problem(response, 422, "claim-not-eligible")


async def test_job_outcome_job_start_not_before_provision_start(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §8: the job starts on or after the start date (one day before: not
    eligible; the start date itself: 201)."""
    await api.set_today("2026-03-20")
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES", start_date="2026-03-20")
    early = await claim(
        client, referral["id"], "job_outcome", **{**OUTCOME, "job_start_date": "2026-03-19"}
    )
    assert_problem(early, 422, "claim-not-eligible")
    body = await claim_ok(
        client, referral["id"], "job_outcome", **{**OUTCOME, "job_start_date": "2026-03-20"}
    )
    assert body["job_start_date"] == "2026-03-20"


async def test_job_outcome_job_start_within_13_weeks_of_end(client: AsyncClient, api: Api) -> None:
    """domain.md §8 (reading): the job starts no later than 13 weeks after the end date. End
    2026-04-01: 2026-07-01 (+91 days) is eligible, 2026-07-02 is not."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-04-01")
    await end_referral(client, referral, "2026-04-01")
    await api.set_today("2026-07-10")
    late = await claim(
        client, referral["id"], "job_outcome", **{**OUTCOME, "job_start_date": "2026-07-02"}
    )
    assert_problem(late, 422, "claim-not-eligible")
    body = await claim_ok(
        client, referral["id"], "job_outcome", **{**OUTCOME, "job_start_date": "2026-07-01"}
    )
    assert body["status"] == "submitted"


async def test_job_outcome_job_start_not_in_the_future(client: AsyncClient, api: Api) -> None:
    """api-contract.md: inside claims every date rule is `claim-not-eligible`: a job starting
    tomorrow cannot be claimed; one starting today can (expected to last 13 weeks)."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-03-20")
    future = await claim(
        client, referral["id"], "job_outcome", **{**OUTCOME, "job_start_date": "2026-03-21"}
    )
    assert_problem(future, 422, "claim-not-eligible")
    await claim_ok(
        client, referral["id"], "job_outcome", **{**OUTCOME, "job_start_date": "2026-03-20"}
    )


@pytest.mark.parametrize("programme", ["SES", "FND"])
async def test_job_outcome_minimum_hours(client: AsyncClient, api: Api, programme: str) -> None:
    """PRaP 11 ("8/16 hours"), domain.md §7: SES and FND need at least 16 hours a week; 15
    is `claim-not-eligible`, 16 is 201."""
    await api.set_today(DAY0)
    await contract(api, programme)
    referral = await started_referral(client, i=1, programme=programme)
    await api.set_today("2026-03-20")
    short = await claim(client, referral["id"], "job_outcome", **{**OUTCOME, "hours_per_week": 15})
    assert_problem(short, 422, "claim-not-eligible")
    body = await claim_ok(
        client, referral["id"], "job_outcome", **{**OUTCOME, "hours_per_week": 16}
    )
    assert body["hours_per_week"] == 16


async def test_job_outcome_lasted_13_weeks_only_after_13_weeks(
    client: AsyncClient, api: Api
) -> None:
    """PRaP 11: basis `lasted_13_weeks` only once today ≥ job start + 13 weeks (job start
    2026-03-10: not on 2026-06-08, yes on 2026-06-09)."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    lasted = {**OUTCOME, "basis": "lasted_13_weeks"}
    await api.set_today("2026-06-08")
    assert_problem(
        await claim(client, referral["id"], "job_outcome", **lasted), 422, "claim-not-eligible"
    )
    await api.set_today(JOB_START_PLUS_13W)
    body = await claim_ok(client, referral["id"], "job_outcome", **lasted)
    assert body["basis"] == "lasted_13_weeks"


async def test_job_outcome_expected_13_weeks_any_time(client: AsyncClient, api: Api) -> None:
    """PRaP 11: basis `expected_13_weeks` may be claimed as soon as the job starts."""
    await api.set_today(DAY0)
    await contract(api, "FND")
    referral = await started_referral(client, i=1, programme="FND")
    await api.set_today(JOB_START)
    body = await claim_ok(client, referral["id"], "job_outcome", **OUTCOME)
    assert body["basis"] == "expected_13_weeks"
    assert body["amount_pence"] == FEES["job_outcome_fee_pence"]


async def test_claim_dates_are_uk_local_dates(client: AsyncClient, api: Api) -> None:
    """domain.md §3: all dates are UK local dates. At 23:30 UTC on 8 June 2026 it is already
    9 June in London (BST), so a job started 10 March has lasted 13 weeks; at 22:30 UTC it
    is still 8 June."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    lasted = {**OUTCOME, "basis": "lasted_13_weeks"}
    await api.set_clock("2026-06-08T22:30:00Z")
    early = await claim(client, referral["id"], "job_outcome", **lasted)
    assert_problem(early, 422, "claim-not-eligible")
    await api.set_clock("2026-06-08T23:30:00Z")
    await claim_ok(client, referral["id"], "job_outcome", **lasted)


@pytest.mark.parametrize("missing", ["job_start_date", "hours_per_week", "basis"])
async def test_job_outcome_missing_fields(client: AsyncClient, api: Api, missing: str) -> None:
    """PRaP 11 (date started work, hours, lasted/expected tick), api-contract.md: a job
    outcome without one of them is `claim-not-eligible`."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-03-20")
    fields = {k: v for k, v in OUTCOME.items() if k != missing}
    response = await claim(client, referral["id"], "job_outcome", **fields)
    assert_problem(response, 422, "claim-not-eligible")


# --- sustainment (PRaP 11: 26 weeks out of the last 30) --------------------------------------


async def test_sustainment_needs_a_validated_job_outcome(client: AsyncClient, api: Api) -> None:
    """domain.md §8, api-contract.md: a sustainment without a validated job outcome is
    `claim-not-eligible`: none at all, a submitted one, a rejected one; once validated: 201."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-03-20")

    async def sustainment_refused() -> None:
        await api.set_today(JOB_START_PLUS_26W)
        response = await claim(client, referral["id"], "sustainment", weeks_in_work_last_30=26)
        assert_problem(response, 422, "claim-not-eligible")
        await api.set_today("2026-03-20")

    await sustainment_refused()  # no job outcome
    first = await claim_ok(client, referral["id"], "job_outcome", **OUTCOME)
    await sustainment_refused()  # submitted only
    assert (await reject(client, first["id"])).status_code == 200
    await sustainment_refused()  # rejected
    await validated_outcome(client, referral["id"], JOB_START)
    await api.set_today(JOB_START_PLUS_26W)
    body = await claim_ok(client, referral["id"], "sustainment", weeks_in_work_last_30=26)
    assert body["status"] == "submitted"


async def test_sustainment_weeks_in_work(client: AsyncClient, api: Api) -> None:
    """PRaP 11 ("26 weeks out of last 30"): 25 is `claim-not-eligible`, missing too, 31 is
    impossible (`validation-error`), 26 is 201."""
    await api.set_today(DAY0)
    await contract(api, "FND")
    referral = await started_referral(client, i=1, programme="FND")
    await api.set_today("2026-03-20")
    await validated_outcome(client, referral["id"], JOB_START)
    await api.set_today(JOB_START_PLUS_26W)
    r25 = await claim(client, referral["id"], "sustainment", weeks_in_work_last_30=25)
    assert_problem(r25, 422, "claim-not-eligible")
    assert_problem(await claim(client, referral["id"], "sustainment"), 422, "claim-not-eligible")
    r31 = await claim(client, referral["id"], "sustainment", weeks_in_work_last_30=31)
    assert_problem(r31, 422, "validation-error")
    body = await claim_ok(client, referral["id"], "sustainment", weeks_in_work_last_30=26)
    assert body["weeks_in_work_last_30"] == 26


async def test_sustainment_only_26_weeks_after_job_start(client: AsyncClient, api: Api) -> None:
    """PRaP 11, domain.md §8: today ≥ job start + 26 weeks (job start 2026-03-10: not on
    2026-09-07, yes on 2026-09-08)."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-03-20")
    await validated_outcome(client, referral["id"], JOB_START)
    await api.set_today("2026-09-07")
    early = await claim(client, referral["id"], "sustainment", weeks_in_work_last_30=26)
    assert_problem(early, 422, "claim-not-eligible")
    await api.set_today(JOB_START_PLUS_26W)
    await claim_ok(client, referral["id"], "sustainment", weeks_in_work_last_30=26)


# --- one of each type per referral (domain.md §8) --------------------------------------------


async def test_duplicate_claims(client: AsyncClient, api: Api) -> None:
    """domain.md §8: one claim of each type per referral: a second one while the first is
    submitted or validated is 409 `duplicate-claim`; other types are independent."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    first = await claim_ok(client, referral["id"], "attachment")
    assert_problem(await claim(client, referral["id"], "attachment"), 409, "duplicate-claim")
    await validate(client, first["id"])
    other_clerk = auth("provider", sub="clerk-2", provider_id=PROVIDER, scopes=("claims",))
    again = await claim(client, referral["id"], "attachment", headers=other_clerk)
    assert_problem(again, 409, "duplicate-claim")
    await api.set_today("2026-03-20")
    await claim_ok(client, referral["id"], "job_outcome", **OUTCOME)
    dup = await claim(client, referral["id"], "job_outcome", **{**OUTCOME, "hours_per_week": 30})
    assert_problem(dup, 409, "duplicate-claim")
    listed = (await client.get(f"/v1/claims?referral_id={referral['id']}", headers=POST)).json()
    assert len(listed["items"]) == 2


async def test_new_claim_after_rejection(client: AsyncClient, api: Api) -> None:
    """domain.md §8: a rejected claim no longer counts; a new one of that type may be
    submitted (and then that one blocks further duplicates)."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    first = await claim_ok(client, referral["id"], "attachment")
    assert (await reject(client, first["id"], "evidence missing")).status_code == 200
    second = await claim_ok(client, referral["id"], "attachment", evidence_reference="E-2")
    assert second["id"] != first["id"]
    assert_problem(await claim(client, referral["id"], "attachment"), 409, "duplicate-claim")
    statuses = {
        c["id"]: c["status"] for c in (await client.get("/v1/claims", headers=POST)).json()["items"]
    }
    assert statuses == {first["id"]: "rejected", second["id"]: "submitted"}


@pytest.mark.parametrize("round_", range(3))
async def test_racing_duplicate_claims(racing: AsyncClient, api: Api, round_: int) -> None:
    """domain.md §8, api-contract.md (Writes): several identical claims at once from
    different clerks: exactly one 201, the rest 409 `duplicate-claim`; one claim stored,
    with one event."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(racing, i=1, programme="SES")
    clerks = [
        auth("provider", sub=f"racer-{n}", provider_id=PROVIDER, scopes=("claims",))
        for n in range(5)
    ]
    racing.in_flight.peak = 0  # type: ignore[attr-defined]
    responses = await asyncio.gather(
        *(claim(racing, referral["id"], "attachment", headers=h) for h in clerks)
    )
    assert racing.in_flight.peak >= 2, "the requests did not overlap"  # type: ignore[attr-defined]
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409, 409], [r.text for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "duplicate-claim")
    listed = (await racing.get("/v1/claims", headers=POST)).json()["items"]
    assert len(listed) == 1
    assert len(await claim_history(racing, listed[0]["id"])) == 1


async def test_racing_validate_and_reject(racing: AsyncClient, api: Api) -> None:
    """domain.md §8: a submitted claim is validated or rejected, never both: racing
    decisions give one 200, the others 409 `invalid-transition`, and one decision event."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(racing, i=1, programme="SES")
    submitted = await claim_ok(racing, referral["id"], "attachment")
    path = f"/v1/claims/{submitted['id']}"
    calls = []
    for _ in range(2):
        calls.append(racing.post(f"{path}/validate", headers=POST, json={}))
        calls.append(racing.post(f"{path}/reject", headers=POST, json={"reason": "no"}))
    racing.in_flight.peak = 0  # type: ignore[attr-defined]
    responses = await asyncio.gather(*calls)
    assert racing.in_flight.peak >= 2, "the requests did not overlap"  # type: ignore[attr-defined]
    assert [r.status_code for r in responses].count(200) == 1, [r.text for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert_problem(response, 409, "invalid-transition")
    winner = next(r.json() for r in responses if r.status_code == 200)
    history = await claim_history(racing, submitted["id"])
    assert [e["type"] for e in history] == ["submitted", winner["status"]]
    assert (await get_claim(racing, submitted["id"]))["status"] == winner["status"]


async def test_create_claim_is_idempotent(client: AsyncClient, api: Api) -> None:
    """api-contract.md (Writes): createClaim with the same Idempotency-Key and body returns
    the first response again without a second claim; a different body with that key is 422
    `idempotency-key-reused`."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    headers = {**CLERK_A, "Idempotency-Key": "claim-1"}
    body = {"referral_id": referral["id"], "claim_type": "attachment"}
    first = await client.post("/v1/claims", headers=headers, json=body)
    second = await client.post("/v1/claims", headers=headers, json=body)
    assert first.status_code == second.status_code == 201, second.text
    assert first.json() == second.json()
    other = await client.post(
        "/v1/claims", headers=headers, json={**body, "evidence_reference": "E-9"}
    )
    assert_problem(other, 422, "idempotency-key-reused")
    assert len((await client.get("/v1/claims", headers=POST)).json()["items"]) == 1


# --- segregation of duties (GEN 122) ---------------------------------------------------------


async def test_segregation_of_duties_start(client: AsyncClient, api: Api) -> None:
    """GEN 122: the person who recorded the start may not claim for the referral (403
    `segregation-of-duties`), whatever the claim type; a colleague may, and so may the
    person who only accepted the referral."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    alice = auth("provider", sub="alice", provider_id=PROVIDER, scopes=("referrals", "claims"))
    bob = auth("provider", sub="bob", provider_id=PROVIDER, scopes=("referrals", "claims"))
    referral = await started_referral(client, i=1, programme="SES", starter=alice)
    refused = await claim(client, referral["id"], "attachment", headers=alice)
    assert_problem(refused, 403, "segregation-of-duties")
    await api.set_today("2026-03-20")
    refused = await claim(client, referral["id"], "job_outcome", headers=alice, **OUTCOME)
    assert_problem(refused, 403, "segregation-of-duties")
    await claim_ok(client, referral["id"], "attachment", headers=bob)
    # PROVIDER_A (sub provider-user) accepted the referral but did not start it.
    await claim_ok(client, referral["id"], "job_outcome", headers=PROVIDER_A, **OUTCOME)


async def test_segregation_of_duties_end(client: AsyncClient, api: Api) -> None:
    """GEN 122: the person who recorded the end may not claim either; a colleague may."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    carol = auth("provider", sub="carol", provider_id=PROVIDER, scopes=("referrals", "claims"))
    referral = await started_referral(client, i=1, programme="SES")
    await api.set_today("2026-03-20")
    await end_referral(client, referral, "2026-03-20", headers=carol)
    refused = await claim(client, referral["id"], "job_outcome", headers=carol, **OUTCOME)
    assert_problem(refused, 403, "segregation-of-duties")
    assert_problem(
        await claim(client, referral["id"], "attachment", headers=carol),
        403,
        "segregation-of-duties",
    )
    await claim_ok(client, referral["id"], "job_outcome", **OUTCOME)


async def test_segregation_is_per_person_not_per_name_elsewhere(
    client: AsyncClient, api: Api
) -> None:
    """GEN 122 with domain.md §1: a user of another provider with the same `sub` as the
    starter still gets 404 for the referral (tenancy first), never segregation-of-duties."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    alice = auth("provider", sub="alice", provider_id=PROVIDER)
    alice_elsewhere = auth("provider", sub="alice", provider_id=OTHER_PROVIDER)
    referral = await started_referral(client, i=1, programme="SES", starter=alice)
    response = await claim(client, referral["id"], "attachment", headers=alice_elsewhere)
    assert_problem(response, 404, "not-found")


# --- validate and reject (post only) ---------------------------------------------------------


async def test_validate_submitted_claim(client: AsyncClient, api: Api) -> None:
    """domain.md §8: POST validates a submitted claim; validating or rejecting it again is
    409 `invalid-transition`, nothing changed."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    submitted = await claim_ok(client, referral["id"], "attachment")
    await api.set_clock("2026-03-03T11:00:00Z")
    validated = await validate(client, submitted["id"])
    assert validated["status"] == "validated"
    assert validated["validated_at"].startswith("2026-03-03T11:00:00")
    again = await client.post(f"/v1/claims/{submitted['id']}/validate", headers=POST, json={})
    assert_problem(again, 409, "invalid-transition")
    assert_problem(await reject(client, submitted["id"]), 409, "invalid-transition")
    assert (await get_claim(client, submitted["id"]))["status"] == "validated"


async def test_reject_submitted_claim(client: AsyncClient, api: Api) -> None:
    """domain.md §8: POST rejects a submitted claim with a reason; afterwards validating or
    rejecting it is 409 `invalid-transition`; a reject without a reason is validation-error."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    submitted = await claim_ok(client, referral["id"], "attachment")
    no_reason = await client.post(f"/v1/claims/{submitted['id']}/reject", headers=POST, json={})
    assert_problem(no_reason, 422, "validation-error")
    response = await reject(client, submitted["id"], "start not evidenced")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "rejected"
    assert body["rejection_reason"] == "start not evidenced"
    assert body["rejected_at"] is not None
    validate_again = await client.post(
        f"/v1/claims/{submitted['id']}/validate", headers=POST, json={}
    )
    assert_problem(validate_again, 409, "invalid-transition")
    assert_problem(await reject(client, submitted["id"]), 409, "invalid-transition")


async def test_validate_and_reject_are_post_only(client: AsyncClient, api: Api) -> None:
    """domain.md §1: only POST validates or rejects claims: provider (even with scope
    claims), JCP and admin are 403; an unknown claim is 404 for POST."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    submitted = await claim_ok(client, referral["id"], "attachment")
    for headers in (CLERK_A, PROVIDER_A, JCP, ADMIN):
        for path, body in (("validate", {}), ("reject", {"reason": "x"})):
            response = await client.post(
                f"/v1/claims/{submitted['id']}/{path}", headers=headers, json=body
            )
            assert_problem(response, 403, "forbidden")
    assert (await get_claim(client, submitted["id"]))["status"] == "submitted"
    unknown = "01ZZZZZZZZZZZZZZZZZZZZZZZZ"
    response = await client.post(f"/v1/claims/{unknown}/validate", headers=POST, json={})
    assert_problem(response, 404, "not-found")
    assert_problem(await reject(client, unknown), 404, "not-found")


async def test_claim_history_submitted_validated_paid(client: AsyncClient, api: Api) -> None:
    """domain.md §8 (submitted → validated → paid): the claim's history lists each change in
    order with its actor."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    submitted = await claim_ok(client, referral["id"], "attachment")
    await validate(client, submitted["id"])
    run = await client.post("/v1/payment-runs", headers=POST, json={"month": "2026-03"})
    assert run.status_code == 201, run.text
    history = await claim_history(client, submitted["id"])
    assert [e["type"] for e in history] == ["submitted", "validated", "paid"]
    assert [e["status"] for e in history] == ["submitted", "validated", "paid"]
    assert history[0]["actor"] == {
        "sub": "claims-clerk-a",
        "role": "provider",
        "provider_id": PROVIDER,
    }
    assert history[1]["actor"]["role"] == "post"
    assert history[1]["actor"]["sub"] == "post-user"
    assert history[2]["actor"]["role"] == "post"
    assert history[2]["payment_run_id"] == run.json()["id"]
    own = await client.get(f"/v1/claims/{submitted['id']}/history", headers=CLERK_A)
    assert own.status_code == 200
    assert own.json()["items"] == history


async def test_claim_history_rejected(client: AsyncClient, api: Api) -> None:
    """domain.md §8 (submitted → rejected, with reason): history shows the reason."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    submitted = await claim_ok(client, referral["id"], "attachment")
    await reject(client, submitted["id"], "no evidence of start")
    history = await claim_history(client, submitted["id"])
    assert [e["type"] for e in history] == ["submitted", "rejected"]
    assert history[1]["reason"] == "no evidence of start"
    assert history[1]["actor"]["role"] == "post"


# --- back-out voids the attachment claim (SES 3.15, JFS 3.37, domain.md §4) ------------------


@pytest.mark.parametrize("validated_first", [False, True])
async def test_back_out_voids_attachment_claim(
    client: AsyncClient, api: Api, validated_first: bool
) -> None:
    """SES 3.15, domain.md §4/§8: POST backing out a start voids its submitted or validated
    attachment claim (status `voided`, a `voided` event by POST); the voided claim can be
    neither validated nor paid, and no longer blocks a claim of that type (a new attachment
    claim is refused for want of a start, not as a duplicate)."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    attachment = await claim_ok(client, referral["id"], "attachment")
    if validated_first:
        await validate(client, attachment["id"])
    response = await act(
        client, referral["id"], "back-out", {"reason": "recorded in error"}, headers=POST
    )
    assert response.status_code == 200, response.text
    voided = await get_claim(client, attachment["id"])
    assert voided["status"] == "voided"
    assert voided["voided_at"] is not None
    history = await claim_history(client, attachment["id"])
    expected = ["submitted", "validated", "voided"] if validated_first else ["submitted", "voided"]
    assert [e["type"] for e in history] == expected
    assert history[-1]["actor"]["role"] == "post"
    assert history[-1]["status"] == "voided"
    again = await client.post(f"/v1/claims/{attachment['id']}/validate", headers=POST, json={})
    assert_problem(again, 409, "invalid-transition")
    run = await client.post("/v1/payment-runs", headers=POST, json={"month": "2026-03"})
    assert run.status_code == 201, run.text
    assert run.json()["lines"] == []
    new = await claim(client, referral["id"], "attachment")
    assert_problem(new, 422, "claim-not-eligible")


async def test_back_out_leaves_other_referrals_claims(client: AsyncClient, api: Api) -> None:
    """SES 3.15: only the backed-out referral's attachment claim is voided."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    backed = await started_referral(client, i=1, programme="SES")
    kept = await started_referral(client, i=2, programme="SES")
    voided = await claim_ok(client, backed["id"], "attachment")
    other = await claim_ok(client, kept["id"], "attachment")
    response = await act(client, backed["id"], "back-out", {"reason": "error"}, headers=POST)
    assert response.status_code == 200, response.text
    assert (await get_claim(client, voided["id"]))["status"] == "voided"
    assert (await get_claim(client, other["id"]))["status"] == "submitted"


# --- reading: tenancy, filters, pages (domain.md §1; api-contract.md Writes) -----------------


async def _two_providers_claims(client: AsyncClient, api: Api) -> dict[str, Any]:
    await api.set_today(DAY0)
    await contract(api, "SES")
    await contract(api, "SES", provider_id=OTHER_PROVIDER)
    mine = await started_referral(client, i=1, programme="SES")
    mine2 = await started_referral(client, i=2, programme="SES")
    theirs = await started_referral(client, i=3, programme="SES", provider_id=OTHER_PROVIDER)
    await api.set_today("2026-03-20")
    a1 = await claim_ok(client, mine["id"], "attachment")
    o1 = await claim_ok(client, mine["id"], "job_outcome", **OUTCOME)
    a2 = await claim_ok(client, mine2["id"], "attachment")
    b1 = await claim_ok(client, theirs["id"], "attachment", headers=CLERK_B)
    await validate(client, a1["id"])
    await reject(client, a2["id"])
    return {"mine": mine, "mine2": mine2, "theirs": theirs, "a1": a1, "o1": o1, "a2": a2, "b1": b1}


async def test_claims_tenancy(client: AsyncClient, api: Api) -> None:
    """domain.md §1: a provider sees its own claims only, and another provider's claim is
    404 on get and on history, as an unknown id is; POST sees all."""
    c = await _two_providers_claims(client, api)
    a_ids = {c["a1"]["id"], c["o1"]["id"], c["a2"]["id"]}
    listed_a = (await client.get("/v1/claims", headers=CLERK_A)).json()["items"]
    assert set(_ids(listed_a)) == a_ids
    listed_b = (await client.get("/v1/claims", headers=CLERK_B)).json()["items"]
    assert _ids(listed_b) == [c["b1"]["id"]]
    everyone = (await client.get("/v1/claims", headers=POST)).json()["items"]
    assert set(_ids(everyone)) == a_ids | {c["b1"]["id"]}
    by_provider = (
        await client.get(f"/v1/claims?provider_id={OTHER_PROVIDER}", headers=POST)
    ).json()
    assert _ids(by_provider["items"]) == [c["b1"]["id"]]
    # A provider asking for the other provider's claims still sees only its own (none).
    sneaky = (await client.get(f"/v1/claims?provider_id={OTHER_PROVIDER}", headers=CLERK_A)).json()
    assert sneaky["items"] == []
    for path in (f"/v1/claims/{c['a1']['id']}", f"/v1/claims/{c['a1']['id']}/history"):
        hidden = await client.get(path, headers=CLERK_B)
        assert_problem(hidden, 404, "not-found")
    unknown = await client.get("/v1/claims/01ZZZZZZZZZZZZZZZZZZZZZZZZ", headers=CLERK_B)
    assert_problem(unknown, 404, "not-found")
    # Listing with another provider's referral id reveals nothing.
    filtered = await client.get(f"/v1/claims?referral_id={c['mine']['id']}", headers=CLERK_B)
    assert filtered.json()["items"] == []
    assert (await get_claim(client, c["a1"]["id"], CLERK_A))["id"] == c["a1"]["id"]


async def test_claims_reading_roles(client: AsyncClient, api: Api) -> None:
    """api-contract.md: claims are read by POST and the provider (reading needs either scope);
    JCP and admin are 403."""
    c = await _two_providers_claims(client, api)
    referrals_only = auth("provider", sub="deliverer", provider_id=PROVIDER, scopes=("referrals",))
    assert (await client.get("/v1/claims", headers=referrals_only)).status_code == 200
    assert (
        await client.get(f"/v1/claims/{c['a1']['id']}", headers=referrals_only)
    ).status_code == 200
    for headers in (JCP, ADMIN):
        assert_problem(await client.get("/v1/claims", headers=headers), 403, "forbidden")
        assert_problem(
            await client.get(f"/v1/claims/{c['a1']['id']}", headers=headers), 403, "forbidden"
        )


async def test_claims_filters(client: AsyncClient, api: Api) -> None:
    """api-contract.md listClaims: filters by status, claim_type and referral_id, alone and
    together."""
    c = await _two_providers_claims(client, api)

    async def ids(query: str, headers: dict[str, str] = POST) -> set[str]:
        response = await client.get(f"/v1/claims?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return set(_ids(response.json()["items"]))

    assert await ids("status=validated") == {c["a1"]["id"]}
    assert await ids("status=rejected") == {c["a2"]["id"]}
    assert await ids("status=submitted") == {c["o1"]["id"], c["b1"]["id"]}
    assert await ids("status=submitted", CLERK_A) == {c["o1"]["id"]}
    assert await ids("claim_type=job_outcome") == {c["o1"]["id"]}
    assert await ids("claim_type=attachment") == {c["a1"]["id"], c["a2"]["id"], c["b1"]["id"]}
    assert await ids(f"referral_id={c['mine']['id']}") == {c["a1"]["id"], c["o1"]["id"]}
    assert await ids(f"referral_id={c['mine']['id']}&claim_type=attachment") == {c["a1"]["id"]}
    assert await ids("status=paid") == set()
    bad = await client.get("/v1/claims?status=approved", headers=POST)
    assert_problem(bad, 422, "validation-error")


async def test_claims_pagination(client: AsyncClient, api: Api) -> None:
    """api-contract.md (Writes): lists take `limit` 1..100 and return `next_cursor`, null on
    the last page; pages neither repeat nor skip."""
    await api.set_today(DAY0)
    await contract(api, "SES")
    created = []
    for i in range(5):
        referral = await started_referral(client, i=i, programme="SES")
        created.append((await claim_ok(client, referral["id"], "attachment"))["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(f"/v1/claims?{query}", headers=CLERK_A)).json()
        assert len(body["items"]) <= 2
        seen += _ids(body["items"])
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen))
    for limit in (0, 101, "x"):
        response = await client.get(f"/v1/claims?limit={limit}", headers=POST)
        assert_problem(response, 422, "validation-error")
    default = (await client.get("/v1/claims", headers=POST)).json()
    assert len(default["items"]) == 5
    assert default["next_cursor"] is None


async def test_claims_carry_an_etag_and_honour_if_match(client: AsyncClient, api: Api) -> None:
    """api-contract.md Writes: a decision on a claim with a stale If-Match is 412 and changes
    nothing; the current one (or `*`) goes through; every representation has its ETag."""
    await api.set_today("2026-03-02")
    await contract(api, "SES")
    referral = await started_referral(client, i=901, programme="SES")
    created = await claim(client, referral["id"], "attachment")
    assert created.status_code == 201, created.text
    claim_id = created.json()["id"]
    assert created.headers["etag"] == f'"{created.json()["version"]}"'
    fetched = await client.get(f"/v1/claims/{claim_id}", headers=POST)
    assert fetched.headers["etag"] == created.headers["etag"]
    stale = '"999"'
    for path, body in (
        (f"/v1/claims/{claim_id}/validate", {}),
        (f"/v1/claims/{claim_id}/reject", {"reason": "x"}),
    ):
        refused = await client.post(path, headers={**POST, "If-Match": stale}, json=body)
        assert_problem(refused, 412, "precondition-failed")
    assert (await get_claim(client, claim_id))["status"] == "submitted"
    validated = await client.post(
        f"/v1/claims/{claim_id}/validate",
        headers={**POST, "If-Match": fetched.headers["etag"]},
        json={},
    )
    assert validated.status_code == 200, validated.text
    assert validated.headers["etag"] == f'"{validated.json()["version"]}"'
    assert validated.headers["etag"] != fetched.headers["etag"]
