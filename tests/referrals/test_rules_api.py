"""HTTP-level tests of the referral rules: domain.md §2 (MAPPA), §3 (acknowledgement
deadline), §4 (lifecycle) and §5 (creating a referral), with api-contract.md (Referrals).

Every test names the paragraph it checks (JFS = Job Finding Support guidance, SES =
Specialist Employability Support, HTW = Help to Work / CWP, GEN = generic guidance).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.helpers import (
    ADMIN,
    JCP,
    OTHER_PROVIDER,
    POST,
    PROVIDER,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    act,
    assert_problem,
    auth,
    create_referral,
    referral_body,
)

# Monday 2 March 2026: a working day, acknowledgement due Tuesday 3 March (JFS 3.07).
TODAY = "2026-03-02"
ACK_DUE = "2026-03-03"
NOON = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # what api.set_today(TODAY) sets

PROVIDER_ACTIONS = (
    "acknowledge",
    "accept",
    "reject",
    "cancel",
    "did-not-attend",
    "did-not-start",
    "start",
    "end",
)

# A valid body for each action, dated TODAY (so that only the state decides).
BODIES: dict[str, dict[str, Any]] = {
    "acknowledge": {},
    "accept": {},
    "reject": {"reason": "other"},
    "cancel": {"reason": "no_contact"},
    "did-not-attend": {},
    "did-not-start": {},
    "start": {"start_date": TODAY},
    "end": {"end_code": 1, "end_date": TODAY, "last_engagement_date": TODAY},
    "back-out": {"reason": "start recorded in error"},
}

# domain.md §4: the states each action may follow.
ALLOWED_FROM: dict[str, set[str]] = {
    "acknowledge": {"referred"},
    "accept": {"referred", "acknowledged"},
    "reject": {"referred", "acknowledged"},
    "cancel": {"acknowledged", "accepted"},
    "did-not-attend": {"acknowledged", "accepted"},
    "did-not-start": {"acknowledged", "accepted"},
    "start": {"accepted"},
    "end": {"started"},
    "back-out": {"started"},
}
ALLOWED_STEPS = {"acknowledged": ["acknowledge"], "accepted": ["acknowledge", "accept"]}
STATES = ("referred", "acknowledged", "accepted", "started", "ended", "rejected", "cancelled")


# --- local helpers ---------------------------------------------------------------------------


async def setup(
    api: Api,
    *,
    today: str = TODAY,
    programmes: tuple[str, ...] = ("JFS",),
    provider_id: str = PROVIDER,
) -> None:
    await api.set_today(today)
    for programme in programmes:
        await api.create_contract(programme=programme, provider_id=provider_id)


async def get(client: AsyncClient, rid: str, headers: dict[str, str] = JCP) -> dict[str, Any]:
    response = await client.get(f"/v1/referrals/{rid}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def history(
    client: AsyncClient, rid: str, headers: dict[str, str] = JCP
) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/referrals/{rid}/history", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def ok(
    client: AsyncClient,
    rid: str,
    action: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    if headers is None:
        headers = POST if action == "back-out" else PROVIDER_A
    response = await act(
        client, rid, action, body if body is not None else BODIES[action], headers=headers
    )
    assert response.status_code == 200, (action, response.text)
    result: dict[str, Any] = response.json()
    return result


async def drive(client: AsyncClient, rid: str, state: str) -> dict[str, Any]:
    """Take a fresh ``referred`` referral (made TODAY) to ``state`` through the API."""
    steps = {
        "referred": [],
        "acknowledged": ["acknowledge"],
        "accepted": ["acknowledge", "accept"],
        "started": ["acknowledge", "accept", "start"],
        "ended": ["acknowledge", "accept", "start", "end"],
        "rejected": ["reject"],
        "cancelled": ["acknowledge", "cancel"],
        "backed_out": ["acknowledge", "accept", "start", "back-out"],
    }[state]
    for action in steps:
        await ok(client, rid, action)
    return await get(client, rid)


async def new_referral(client: AsyncClient, state: str = "referred", **kwargs: Any) -> str:
    rid: str = (await create_referral(client, **kwargs))["id"]
    await drive(client, rid, state)
    return rid


async def snapshot(client: AsyncClient, rid: str) -> tuple[dict[str, Any], int]:
    return await get(client, rid), len(await history(client, rid))


async def assert_unchanged(
    client: AsyncClient, rid: str, before: tuple[dict[str, Any], int]
) -> None:
    referral, events = await snapshot(client, rid)
    assert referral["version"] == before[0]["version"]
    assert referral["status"] == before[0]["status"]
    assert events == before[1]


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


async def create(
    client: AsyncClient, body: dict[str, Any], headers: dict[str, str] = JCP
) -> Response:
    return await client.post("/v1/referrals", headers=headers, json=body)


async def visible_referrals(client: AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/referrals", headers=JCP)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# =============================================================================================
# domain.md §2: MAPPA without SCR (SES 3.32, 3.37; GEN 88-90)
# =============================================================================================

CONTACT_DETAILS = {
    "address-lines": {"address": {"lines": ["1 High Street", "Leeds"]}},
    "postcode": {"address": {"postcode": "LS1 1AA"}},
    "full-address": {"address": {"lines": ["1 High Street"], "postcode": "LS1 1AA"}},
    "phone": {"phone": "0113 496 0000"},
    "mobile": {"mobile": "07700 900000"},
}


@pytest.mark.parametrize("detail", CONTACT_DETAILS, ids=list(CONTACT_DETAILS))
async def test_mappa_referral_with_contact_details_refused_ses_3_32(
    client: AsyncClient, api: Api, detail: str
) -> None:
    """SES 3.32, GEN 88-90 (domain.md §2): a MAPPA referral carrying an address, postcode
    or telephone number is refused, 422 mappa-contact-details, and nothing is stored."""
    await setup(api)
    body = referral_body(mappa=True, with_contact_details=False)
    body["participant"] |= CONTACT_DETAILS[detail]
    response = await create(client, body)
    problem = assert_problem(response, 422, "mappa-contact-details")
    # No error body echoes personal data (api-contract.md, Errors).
    for value in ("0113 496 0000", "07700 900000", "LS1 1AA", "High Street", "AB123456C"):
        assert value not in response.text, problem
    assert "location" not in response.headers
    # Nothing stored: no referral, no event, and the NINO is free to be referred again.
    assert await visible_referrals(client) == []
    search = await client.post("/v1/referrals/search", headers=JCP, json={"nino": "AB123456C"})
    assert search.json()["items"] == []
    feed = await client.get("/v1/events", headers=POST)
    assert feed.json()["items"] == []
    again = await create_referral(client, mappa=True, with_contact_details=False)
    assert again["re_referral"] is False


async def test_non_mappa_referral_may_carry_contact_details_ses_3_33(
    client: AsyncClient, api: Api
) -> None:
    """SES 3.33 (domain.md §5): the data set includes address, postcode and phones;
    without the MAPPA marker there is no notice (domain.md §2)."""
    await setup(api)
    referral = await create_referral(client, mappa=False, with_contact_details=True)
    assert referral["mappa"] is False
    assert referral["mappa_notice"] is None
    assert referral["participant"]["address"]["postcode"] == "LS1 1AA"
    assert referral["participant"]["phone"] == "0113 496 0000"


def assert_mappa(representation: dict[str, Any]) -> None:
    assert representation["mappa"] is True, representation
    assert isinstance(representation["mappa_notice"], str), representation
    assert representation["mappa_notice"].strip()
    for contact in ("address", "phone", "mobile"):
        assert representation["participant"].get(contact) is None


async def test_mappa_notice_on_every_representation_ses_3_37(client: AsyncClient, api: Api) -> None:
    """SES 3.37, GEN 88-90 (domain.md §2): every representation of a MAPPA referral
    (create, get, list, search, each action's response, for every reader) says
    `mappa: true` with a nominated-officer notice."""
    await setup(api)
    created = await create_referral(client, mappa=True, with_contact_details=False)
    assert_mappa(created)
    rid = created["id"]
    assert "nominated officer" in created["mappa_notice"].lower()

    async def every_read() -> None:
        for headers in (JCP, POST, PROVIDER_A):
            assert_mappa(await get(client, rid, headers))
            listed = await client.get("/v1/referrals", headers=headers)
            [item] = [i for i in listed.json()["items"] if i["id"] == rid]
            assert_mappa(item)
            found = await client.post(
                "/v1/referrals/search", headers=headers, json={"nino": "AB123456C"}
            )
            [item] = [i for i in found.json()["items"] if i["id"] == rid]
            assert_mappa(item)

    await every_read()
    for action in ("acknowledge", "accept", "start", "back-out"):
        assert_mappa(await ok(client, rid, action))
        await every_read()
    assert_mappa(await ok(client, rid, "did-not-start"))
    await every_read()

    # A second MAPPA referral ended by the provider, and one rejected.
    other = (
        await create_referral(client, nino="CE123456D", mappa=True, with_contact_details=False)
    )["id"]
    for action in ("accept", "start", "end"):
        assert_mappa(await ok(client, other, action))
    third = (
        await create_referral(client, nino="JK654321A", mappa=True, with_contact_details=False)
    )["id"]
    assert_mappa(await ok(client, third, "reject"))


# =============================================================================================
# domain.md §5 and §3: creating a referral
# =============================================================================================


@pytest.mark.parametrize(
    ("today", "due"),
    [
        ("2026-03-06", "2026-03-09"),  # JFS 3.07 example: Friday -> Monday
        ("2026-04-02", "2026-04-07"),  # JFS 3.07 example: 3 and 6 April are holidays
        ("2026-03-02", "2026-03-03"),  # Monday -> Tuesday
        ("2026-03-07", "2026-03-10"),  # Saturday: day 1 is Monday 9 March
        ("2026-04-01", "2026-04-02"),  # Wednesday -> Thursday
        ("2025-12-31", "2026-01-05"),  # 1 Jan everywhere, 2 Jan in Scotland, weekend
        ("2026-11-27", "2026-12-01"),  # St Andrew's Day (Scotland) Monday 30 November
    ],
)
async def test_referral_date_is_today_and_acknowledgement_due_jfs_3_07(
    client: AsyncClient, api: Api, today: str, due: str
) -> None:
    """JFS 3.07, domain.md §3: referral date = sandbox today; acknowledge within 2 working
    days, the day of receipt being day 1 (a holiday in any of the three nations counts)."""
    await setup(api, today=today)
    referral = await create_referral(client)
    assert referral["referral_date"] == today
    assert referral["acknowledgement_due"] == due
    assert referral["status"] == "referred"
    assert (await get(client, referral["id"]))["acknowledgement_due"] == due


async def test_referral_date_is_the_uk_date_domain_3(client: AsyncClient, api: Api) -> None:
    """domain.md §3: all dates are UK local dates. 23:30 UTC on 1 June 2026 is already
    2 June in London (BST), so the referral date is 2 June."""
    await api.set_clock("2026-06-01T23:30:00Z")
    await api.create_contract()
    referral = await create_referral(client)
    assert referral["referral_date"] == "2026-06-02"
    assert referral["acknowledgement_due"] == "2026-06-03"


async def test_create_answers_201_with_location_and_representation_domain_5(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §5, api-contract.md (Referrals): 201, Location, the referral, version."""
    await setup(api)
    response = await create(client, referral_body())
    assert response.status_code == 201, response.text
    referral = response.json()
    assert response.headers["location"] == f"/v1/referrals/{referral['id']}"
    assert referral["programme"] == "JFS"
    assert referral["provider_id"] == PROVIDER
    assert referral["re_referral"] is False
    assert referral["closed_by"] is None
    assert referral["mappa"] is False
    assert referral["mappa_notice"] is None
    for name in (
        "acknowledged_at",
        "accepted_at",
        "start_date",
        "end_date",
        "end_code",
        "last_engagement_date",
        "rejection_reason",
        "cancellation_reason",
    ):
        assert referral[name] is None, name
    assert isinstance(referral["version"], int)
    fetched = await client.get(response.headers["location"], headers=JCP)
    assert fetched.status_code == 200
    assert fetched.headers["etag"] == f'"{referral["version"]}"'


BAD_NINOS = (
    [f"{c}A123456C" for c in "DFIQUV"]  # first letter not D F I Q U V
    + [f"A{c}123456C" for c in "DFIOQUV"]  # second letter not D F I O Q U V
    + [f"{p}123456C" for p in ("BG", "GB", "KN", "NK", "NT", "TN", "ZZ")]  # not allocated
    + ["AB123456E", "AB123456Z", "AB1234567", "AB12345C", "AB1234567C", "A1123456C", "ABC23456C"]
)


@pytest.mark.parametrize("nino", BAD_NINOS)
async def test_invalid_nino_is_validation_error_without_echo_domain_5(
    client: AsyncClient, api: Api, nino: str
) -> None:
    """domain.md §5 (HMRC NINO format): bad prefixes, unallocated prefixes and suffixes
    other than A-D are 422 validation-error; the error body never echoes the NINO."""
    await setup(api)
    response = await create(client, referral_body(nino=nino))
    problem = assert_problem(response, 422, "validation-error")
    assert nino not in response.text
    assert nino.lower() not in response.text.lower()
    assert any("nino" in e["field"] for e in problem["errors"]), problem
    assert await visible_referrals(client) == []


@pytest.mark.parametrize("nino", ["ab 12 34 56 c", "ab123456c", " AB 123456 C", "Ab12 3456C"])
async def test_nino_case_and_spaces_normalised_domain_5(
    client: AsyncClient, api: Api, nino: str
) -> None:
    """domain.md §5: NINO case and spaces are normalised ("ab 12 34 56 c" -> AB123456C);
    a search by any spelling finds it, and the normalised NINO counts for JFS 5.19."""
    await setup(api)
    referral = await create_referral(client, nino=nino)
    assert referral["participant"]["nino"] == "AB123456C"
    for spelling in ("AB123456C", "ab 12 34 56 c"):
        found = await client.post("/v1/referrals/search", headers=JCP, json={"nino": spelling})
        assert [i["id"] for i in found.json()["items"]] == [referral["id"]]
    second = await create(client, referral_body(nino="AB123456C"))
    assert_problem(second, 409, "open-referral-exists")


async def test_search_with_invalid_nino_is_validation_error_domain_5(client: AsyncClient) -> None:
    """domain.md §5: a bad NINO is a validation-error wherever it is sent (not echoed)."""
    response = await client.post("/v1/referrals/search", headers=JCP, json={"nino": "QQ123456C"})
    assert_problem(response, 422, "validation-error")
    assert "QQ123456C" not in response.text


@pytest.mark.parametrize("programme", ["XYZ", "jfs", "", "WP"])
async def test_unknown_programme_is_validation_error_domain_5(
    client: AsyncClient, api: Api, programme: str
) -> None:
    """domain.md §5, api-contract.md (Errors): a programme not in the catalogue is a
    validation-error."""
    await setup(api)
    response = await create(client, referral_body(programme=programme))
    assert_problem(response, 422, "validation-error")


@pytest.mark.parametrize("missing", ["programme", "provider_id", "forename", "surname", "nino"])
async def test_required_fields_domain_5(client: AsyncClient, api: Api, missing: str) -> None:
    """api-contract.md (create body): programme, provider_id, forename, surname and nino
    are required; the rest is optional."""
    await setup(api)
    body = referral_body()
    if missing in body:
        del body[missing]
    else:
        del body["participant"][missing]
    assert_problem(await create(client, body), 422, "validation-error")
    minimal = {
        "programme": "JFS",
        "provider_id": PROVIDER,
        "participant": {"forename": "Ada", "surname": "Byron", "nino": "AB123456C"},
    }
    assert (await create(client, minimal)).status_code == 201


CONTRACTS = {
    "none": [],
    "expired-yesterday": [{"start_date": "2025-01-01", "end_date": "2026-03-01"}],
    "starts-tomorrow": [{"start_date": "2026-03-03", "end_date": "2027-03-01"}],
    "other-programme": [{"programme": "SES"}],
    "other-provider": [{"provider_id": OTHER_PROVIDER}],
}


@pytest.mark.parametrize("case", CONTRACTS, ids=list(CONTRACTS))
async def test_no_contract_in_force_domain_5(client: AsyncClient, api: Api, case: str) -> None:
    """domain.md §5: the provider must hold a contract for the programme in force on the
    referral date, else 422 no-contract; nothing is stored."""
    await api.set_today(TODAY)
    for contract in CONTRACTS[case]:
        await api.create_contract(**contract)
    response = await create(client, referral_body())
    assert_problem(response, 422, "no-contract")
    assert "AB123456C" not in response.text
    assert await visible_referrals(client) == []


@pytest.mark.parametrize(
    "contract",
    [
        {"start_date": TODAY, "end_date": "2027-01-01"},
        {"start_date": "2025-01-01", "end_date": TODAY},
    ],
    ids=["starts-today", "ends-today"],
)
async def test_contract_in_force_on_its_first_and_last_day_domain_5(
    client: AsyncClient, api: Api, contract: dict[str, str]
) -> None:
    """domain.md §5: a contract is in force from its start date to its end date inclusive."""
    await api.set_today(TODAY)
    await api.create_contract(**contract)
    referral = await create_referral(client)
    assert referral["contract_id"]


@pytest.mark.parametrize(
    "headers",
    [PROVIDER_A, POST, ADMIN, auth("provider", scopes=("claims",))],
    ids=["provider", "post", "admin", "provider-claims"],
)
async def test_only_jcp_may_create_domain_1_4(
    client: AsyncClient, api: Api, headers: dict[str, str]
) -> None:
    """domain.md §4 (create: by jcp), §1: any other role is 403 forbidden, nothing stored."""
    await setup(api)
    assert_problem(await create(client, referral_body(), headers), 403, "forbidden")
    assert await visible_referrals(client) == []


async def test_creation_event_in_history_domain_4(client: AsyncClient, api: Api) -> None:
    """domain.md §4 (every change is an event), api-contract.md: history starts with the
    creation event, actor role jcp, at the sandbox clock's time."""
    await setup(api)
    headers = auth("jcp", sub="work-coach-17")
    response = await create(client, referral_body(), headers)
    assert response.status_code == 201, response.text
    referral = response.json()
    [event] = await history(client, referral["id"])
    assert event["type"] == "created"
    assert event["actor"]["role"] == "jcp"
    assert event["actor"]["sub"] == "work-coach-17"
    assert event["actor"]["provider_id"] is None
    assert instant(event["occurred_at"]) == NOON
    assert event["referral_date"] == TODAY
    assert event["programme"] == "JFS"
    assert event["version"] == referral["version"]
    # The history is readable by the provider and by POST too, identically.
    assert await history(client, referral["id"], PROVIDER_A) == [event]
    assert await history(client, referral["id"], POST) == [event]


# --- open referral (JFS 5.19) ----------------------------------------------------------------


@pytest.mark.parametrize("state", ["referred", "acknowledged", "accepted", "started", "backed_out"])
async def test_second_referral_while_open_refused_jfs_5_19(
    client: AsyncClient, api: Api, state: str
) -> None:
    """JFS 5.19, domain.md §5: while a referral on the programme is not rejected, cancelled
    or ended, a new one for that NINO is 409 open-referral-exists; nothing is stored."""
    await setup(api)
    await new_referral(client, state)
    response = await create(client, referral_body(nino="ab 12 34 56 c"))
    assert_problem(response, 409, "open-referral-exists")
    assert "AB123456C" not in response.text
    assert len(await visible_referrals(client)) == 1


async def test_open_referral_on_another_programme_does_not_block_jfs_5_19(
    client: AsyncClient, api: Api
) -> None:
    """JFS 5.19, domain.md §5: the open-referral rule is per programme (CWP comes last: an
    open CWP referral bars referral to other provision, HTW 70)."""
    await setup(api, programmes=("JFS", "SES", "CWP", "FND"))
    await new_referral(client, "started", programme="JFS")
    for programme in ("SES", "FND", "CWP"):
        referral = await create_referral(client, programme=programme)
        assert referral["programme"] == programme
        assert referral["re_referral"] is False


async def test_other_nino_same_programme_allowed_jfs_5_19(client: AsyncClient, api: Api) -> None:
    """JFS 5.19: the rule is per participant (NINO)."""
    await setup(api)
    await new_referral(client, "accepted")
    other = await create_referral(client, nino="CE123456D")
    assert other["re_referral"] is False


@pytest.mark.parametrize("state", ["rejected", "cancelled", "ended"])
async def test_new_referral_allowed_after_closed_one_jfs_5_19(
    client: AsyncClient, api: Api, state: str
) -> None:
    """JFS 5.19, domain.md §5: once rejected, cancelled or ended, the participant may be
    referred again (after an ended participation it is a re-referral, JFS annex 3)."""
    await setup(api)
    await new_referral(client, state)
    referral = await create_referral(client)
    assert referral["status"] == "referred"
    assert referral["re_referral"] is (state == "ended")


# --- re-referral (JFS 3.42, 5.16, annex 3; SES 3.18; HTW 89, 158) ----------------------------


async def end_with(client: AsyncClient, rid: str, end_code: int) -> None:
    await drive(client, rid, "started")
    body: dict[str, Any] = {"end_code": end_code, "end_date": TODAY, "last_engagement_date": TODAY}
    if end_code in (37, 46):
        body["policy_reference"] = "POL-1"
    await ok(client, rid, "end", body)


@pytest.mark.parametrize("end_code", [1, 36, 37, 43, 46])
async def test_jfs_re_referral_once_after_ended_participation_jfs_3_42(
    client: AsyncClient, api: Api, end_code: int
) -> None:
    """JFS 3.42, 5.16, annex 3: after a participation that ended (not with 39 or 45) a new
    JFS referral is allowed and is a re-referral; a second re-referral is 409
    re-referral-not-allowed."""
    await setup(api)
    first = (await create_referral(client))["id"]
    await end_with(client, first, end_code)
    second = await create_referral(client)
    assert second["re_referral"] is True
    assert (await get(client, second["id"]))["re_referral"] is True
    await end_with(client, second["id"], 1)
    response = await create(client, referral_body())
    assert_problem(response, 409, "re-referral-not-allowed")
    assert "AB123456C" not in response.text
    assert len(await visible_referrals(client)) == 2


async def test_no_jfs_re_referral_after_completed_provision_jfs_5_16(
    client: AsyncClient, api: Api
) -> None:
    """JFS 3.42, 5.16: a participation that ended with code 39 (Completed Provision) bars a
    re-referral: 409 re-referral-not-allowed."""
    await setup(api)
    first = (await create_referral(client))["id"]
    await end_with(client, first, 39)
    assert_problem(await create(client, referral_body()), 409, "re-referral-not-allowed")
    assert len(await visible_referrals(client)) == 1


@pytest.mark.parametrize("outcome", ["rejected", "cancelled", "did-not-attend", "did-not-start"])
async def test_new_referral_after_non_start_is_not_a_re_referral_domain_5(
    client: AsyncClient, api: Api, outcome: str
) -> None:
    """JFS annex 3, domain.md §5: a new referral after a rejection, cancellation, DNA or DNS
    is not a re-referral (`re_referral: false`), and leaves the one re-referral unused."""
    await setup(api)
    rid = (await create_referral(client))["id"]
    if outcome in ("rejected", "cancelled"):
        await drive(client, rid, outcome)
    else:
        await drive(client, rid, "accepted")
        await ok(client, rid, outcome)
    again = await create_referral(client)
    assert again["re_referral"] is False
    # That participant may still use the JFS re-referral later (JFS 3.42).
    await end_with(client, again["id"], 1)
    assert (await create_referral(client))["re_referral"] is True


@pytest.mark.parametrize("programme", ["SES", "CWP"])
async def test_ses_and_cwp_never_re_refer_ses_3_18_htw_89(
    client: AsyncClient, api: Api, programme: str
) -> None:
    """SES 3.18 (no re-referrals), HTW 89, 158 (CWP: only someone who never started):
    after an ended participation a new referral is 409 re-referral-not-allowed."""
    await setup(api, programmes=(programme,))
    first = (await create_referral(client, programme=programme))["id"]
    await end_with(client, first, 1)
    response = await create(client, referral_body(programme=programme))
    assert_problem(response, 409, "re-referral-not-allowed")


@pytest.mark.parametrize("programme", ["SES", "CWP"])
@pytest.mark.parametrize("outcome", ["rejected", "cancelled", "backed_out"])
async def test_ses_and_cwp_allow_new_referral_if_never_started_htw_158(
    client: AsyncClient, api: Api, programme: str, outcome: str
) -> None:
    """HTW 89, 158, SES 3.18, domain.md §5: a new referral of someone who never started
    (rejected, cancelled, or a start backed out as recorded in error, SES 3.15) is not a
    re-referral and is allowed."""
    await setup(api, programmes=(programme,))
    rid = (await create_referral(client, programme=programme))["id"]
    await drive(client, rid, outcome)
    if outcome == "backed_out":
        await ok(client, rid, "did-not-start")
    again = await create_referral(client, programme=programme)
    assert again["re_referral"] is False


async def test_fnd_re_referral_once_domain_7(client: AsyncClient, api: Api) -> None:
    """domain.md §5, §7 (FND re-referral: once, our reading): one re-referral after an
    ended participation, then 409 re-referral-not-allowed."""
    await setup(api, programmes=("FND",))
    first = (await create_referral(client, programme="FND"))["id"]
    await end_with(client, first, 1)
    second = await create_referral(client, programme="FND")
    assert second["re_referral"] is True
    await end_with(client, second["id"], 36)
    assert_problem(
        await create(client, referral_body(programme="FND")), 409, "re-referral-not-allowed"
    )


async def test_re_referral_rules_are_per_programme_jfs_3_42(client: AsyncClient, api: Api) -> None:
    """JFS 3.42, SES 3.18: an ended SES participation does not make a JFS referral a
    re-referral, and a barred JFS re-referral does not bar SES."""
    await setup(api, programmes=("JFS", "SES"))
    ses = (await create_referral(client, programme="SES"))["id"]
    await end_with(client, ses, 1)
    jfs = await create_referral(client, programme="JFS")
    assert jfs["re_referral"] is False
    await end_with(client, jfs["id"], 39)
    assert_problem(await create(client, referral_body()), 409, "re-referral-not-allowed")


# =============================================================================================
# domain.md §4: the lifecycle
# =============================================================================================


# --- acknowledge (JFS 3.07-3.08) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "due", "late"),
    [
        ("2026-03-06", "2026-03-09", "2026-03-10"),  # JFS 3.07 example 1
        ("2026-04-02", "2026-04-07", "2026-04-08"),  # JFS 3.07 example 2
    ],
)
async def test_acknowledge_only_until_deadline_jfs_3_07(
    client: AsyncClient, api: Api, today: str, due: str, late: str
) -> None:
    """JFS 3.07, domain.md §4: acknowledging is allowed until the acknowledgement deadline
    (inclusive) and refused after it: 409 acknowledgement-window-closed, nothing changed."""
    await setup(api, today=today)
    on_time = (await create_referral(client))["id"]
    too_late = (await create_referral(client, nino="CE123456D"))["id"]
    await api.set_clock(f"{due}T21:00:00Z")
    acknowledged = await ok(client, on_time, "acknowledge")
    assert acknowledged["status"] == "acknowledged"
    assert instant(acknowledged["acknowledged_at"]) == instant(f"{due}T21:00:00Z")
    await api.set_today(late)
    before = await snapshot(client, too_late)
    assert_problem(await act(client, too_late, "acknowledge"), 409, "acknowledgement-window-closed")
    await assert_unchanged(client, too_late, before)
    assert (await get(client, too_late))["acknowledged_at"] is None


async def test_acknowledge_window_uses_uk_date_domain_3(client: AsyncClient, api: Api) -> None:
    """JFS 3.07, domain.md §3 (UK local dates): referral Monday 1 June 2026 (BST) is due
    Tuesday 2 June; 22:30 UTC on 2 June is still 2 June in London, 23:30 UTC is 3 June."""
    await setup(api, today="2026-06-01")
    a = (await create_referral(client))["id"]
    b = (await create_referral(client, nino="CE123456D"))["id"]
    await api.set_clock("2026-06-02T22:30:00Z")
    await ok(client, a, "acknowledge")
    await api.set_clock("2026-06-02T23:30:00Z")
    assert_problem(await act(client, b, "acknowledge"), 409, "acknowledgement-window-closed")
    # Acknowledged in time (UK date 2 June): accepting and starting later are fine.
    await api.set_today("2026-06-05")
    await ok(client, a, "accept")
    started = await ok(client, a, "start", {"start_date": "2026-06-04"})
    assert started["status"] == "started"


# --- accept (JFS 3.07-3.08 note) -------------------------------------------------------------


async def test_accept_from_referred_after_deadline_refused_jfs_3_08(
    client: AsyncClient, api: Api
) -> None:
    """JFS 3.08 note, domain.md §4: a referral not acknowledged by its deadline cannot be
    accepted: 409 acknowledgement-window-closed, nothing changed; rejecting is still allowed."""
    await setup(api)
    rid = (await create_referral(client))["id"]
    await api.set_today("2026-03-04")
    before = await snapshot(client, rid)
    assert_problem(await act(client, rid, "accept"), 409, "acknowledgement-window-closed")
    await assert_unchanged(client, rid, before)
    referral = await get(client, rid, PROVIDER_A)
    assert referral["allowed_actions"] == ["reject"]
    rejected = await ok(client, rid, "reject", {"reason": "inappropriate"})
    assert rejected["status"] == "rejected"


async def test_accept_from_acknowledged_after_deadline_allowed_jfs_3_08(
    client: AsyncClient, api: Api
) -> None:
    """JFS 3.07-3.08, domain.md §4: once acknowledged in time, accepting later is fine."""
    await setup(api)
    rid = (await create_referral(client))["id"]
    await api.set_today(ACK_DUE)
    await ok(client, rid, "acknowledge")
    await api.set_today("2026-03-10")
    accepted = await ok(client, rid, "accept")
    assert accepted["status"] == "accepted"
    assert instant(accepted["acknowledged_at"]).date().isoformat() == ACK_DUE
    assert instant(accepted["accepted_at"]) == instant("2026-03-10T10:00:00Z")


async def test_accept_straight_from_referred_is_one_event_domain_4(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §4, api-contract.md: accepting also acknowledges; accepting straight from
    referred is ONE `accepted` event and sets acknowledged_at."""
    await setup(api)
    rid = (await create_referral(client))["id"]
    await api.set_clock("2026-03-03T15:45:00Z")
    accepted = await ok(client, rid, "accept")
    assert accepted["status"] == "accepted"
    assert instant(accepted["acknowledged_at"]) == instant("2026-03-03T15:45:00Z")
    assert instant(accepted["accepted_at"]) == instant("2026-03-03T15:45:00Z")
    assert [e["type"] for e in await history(client, rid)] == ["created", "accepted"]
    assert accepted["version"] == (await get(client, rid))["version"]


# --- reject (JFS 3.35-3.36, SES 3.8-3.13) ----------------------------------------------------


@pytest.mark.parametrize("reason", ["duplicate", "inappropriate", "not_suitable", "other"])
@pytest.mark.parametrize("note", [None, "Referred twice by mistake"])
@pytest.mark.parametrize("state", ["referred", "acknowledged"])
async def test_reject_with_each_reason_jfs_3_35(
    client: AsyncClient, api: Api, reason: str, note: str | None, state: str
) -> None:
    """JFS 3.35-3.36, SES 3.8-3.13: reject from referred or acknowledged with each reason and
    an optional note; closed by the provider; one `rejected` event carrying both."""
    await setup(api)
    rid = await new_referral(client, state)
    await api.set_clock("2026-03-02T14:00:00Z")
    body: dict[str, Any] = {"reason": reason}
    if note is not None:
        body["note"] = note
    rejected = await ok(client, rid, "reject", body)
    assert rejected["status"] == "rejected"
    assert rejected["rejection_reason"] == reason
    assert rejected["closed_by"] == "provider"
    assert rejected["allowed_actions"] == []
    event = (await history(client, rid))[-1]
    assert event["type"] == "rejected"
    assert event["reason"] == reason
    assert event.get("note") == note
    assert instant(event["occurred_at"]) == instant("2026-03-02T14:00:00Z")


@pytest.mark.parametrize("state", ["referred", "acknowledged"])
async def test_reject_allowed_after_deadline_domain_4(
    client: AsyncClient, api: Api, state: str
) -> None:
    """domain.md §4 (reject: allowed after the deadline too), JFS 3.36."""
    await setup(api)
    rid = await new_referral(client, state)
    await api.set_today("2026-03-20")
    rejected = await ok(client, rid, "reject", {"reason": "not_suitable", "note": "late"})
    assert rejected["status"] == "rejected"
    assert rejected["closed_by"] == "provider"


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("reject", {"reason": "unknown"}),
        ("reject", {}),
        ("reject", {"reason": "other", "note": "x" * 2001}),
        ("cancel", {"reason": "moved_away"}),
        ("cancel", {}),
        ("start", {}),
        ("start", {"start_date": "not-a-date"}),
        ("end", {"end_code": 1, "end_date": TODAY}),
        ("back-out", {}),
    ],
)
async def test_action_body_shape_is_validation_error_domain_4(
    client: AsyncClient, api: Api, action: str, body: dict[str, Any]
) -> None:
    """api-contract.md (Referrals bodies, Errors): an unknown reason or a missing field is
    422 validation-error; nothing changes (domain.md §4)."""
    await setup(api)
    rid = await new_referral(client, "started" if action in ("end", "back-out") else "accepted")
    before = await snapshot(client, rid)
    headers = POST if action == "back-out" else PROVIDER_A
    assert_problem(await act(client, rid, action, body, headers=headers), 422, "validation-error")
    await assert_unchanged(client, rid, before)


# --- cancel, did-not-attend, did-not-start (JFS annex 2, 3.31-3.34; SES 3.14) ----------------


@pytest.mark.parametrize("reason", ["no_contact", "did_not_attend", "did_not_start"])
@pytest.mark.parametrize("state", ["acknowledged", "accepted"])
async def test_cancel_with_each_reason_jfs_annex_2(
    client: AsyncClient, api: Api, reason: str, state: str
) -> None:
    """JFS annex 2, SES 3.14, domain.md §4: cancel from acknowledged or accepted with each
    reason (and an optional note): cancelled, closed by the provider, one `cancelled` event."""
    await setup(api)
    rid = await new_referral(client, state)
    cancelled = await ok(client, rid, "cancel", {"reason": reason, "note": "phoned twice"})
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation_reason"] == reason
    assert cancelled["closed_by"] == "provider"
    assert cancelled["allowed_actions"] == []
    event = (await history(client, rid))[-1]
    assert event["type"] == "cancelled"
    assert event["reason"] == reason
    assert event["note"] == "phoned twice"


@pytest.mark.parametrize("state", ["acknowledged", "accepted"])
@pytest.mark.parametrize("note", [None, "no show"])
async def test_did_not_attend_jfs_3_33(
    client: AsyncClient, api: Api, state: str, note: str | None
) -> None:
    """JFS 3.33-3.34, domain.md §4: did-not-attend = cancel with did_not_attend, closed by
    the provider, one `did_not_attend` event."""
    await setup(api)
    rid = await new_referral(client, state)
    cancelled = await ok(client, rid, "did-not-attend", {} if note is None else {"note": note})
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation_reason"] == "did_not_attend"
    assert cancelled["closed_by"] == "provider"
    events = await history(client, rid)
    assert events[-1]["type"] == "did_not_attend"
    assert events[-1].get("note") == note
    assert len(events) == len(ALLOWED_STEPS[state]) + 2


@pytest.mark.parametrize("state", ["acknowledged", "accepted"])
@pytest.mark.parametrize("meeting", [None, "2026-03-02", "2026-03-05", "2026-03-09"])
async def test_did_not_start_jfs_3_31(
    client: AsyncClient, api: Api, state: str, meeting: str | None
) -> None:
    """JFS 3.31-3.32, domain.md §4: did-not-start = cancel with did_not_start, with an
    optional initial_meeting_date between the referral date and today inclusive."""
    await setup(api)
    rid = await new_referral(client, state)
    await api.set_today("2026-03-09")
    body: dict[str, Any] = {"note": "attended, declined"}
    if meeting is not None:
        body["initial_meeting_date"] = meeting
    cancelled = await ok(client, rid, "did-not-start", body)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation_reason"] == "did_not_start"
    assert cancelled["closed_by"] == "provider"
    assert cancelled["initial_meeting_date"] == meeting
    event = (await history(client, rid))[-1]
    assert event["type"] == "did_not_start"
    assert event.get("initial_meeting_date") == meeting
    assert event["note"] == "attended, declined"


@pytest.mark.parametrize("meeting", ["2026-03-01", "2026-03-10", "2027-01-01"])
async def test_did_not_start_meeting_date_out_of_range_jfs_3_31(
    client: AsyncClient, api: Api, meeting: str
) -> None:
    """JFS 3.31, domain.md §4, api-contract.md: an initial meeting date before the referral
    date or in the future is 422 date-out-of-range; nothing changes."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    await api.set_today("2026-03-09")
    before = await snapshot(client, rid)
    response = await act(client, rid, "did-not-start", {"initial_meeting_date": meeting})
    assert_problem(response, 422, "date-out-of-range")
    await assert_unchanged(client, rid, before)


# --- start (JFS 3.27, annex 3) ---------------------------------------------------------------


@pytest.mark.parametrize("state", ["referred", "acknowledged"])
async def test_start_only_from_accepted_jfs_annex_3(
    client: AsyncClient, api: Api, state: str
) -> None:
    """domain.md §4: start is allowed only from accepted; otherwise 409 invalid-transition."""
    await setup(api)
    rid = await new_referral(client, state)
    before = await snapshot(client, rid)
    assert_problem(await act(client, rid, "start", BODIES["start"]), 409, "invalid-transition")
    await assert_unchanged(client, rid, before)


@pytest.mark.parametrize("start_date", ["2026-03-02", "2026-03-05", "2026-03-20"])
async def test_start_date_in_range_and_retrospective_jfs_3_27(
    client: AsyncClient, api: Api, start_date: str
) -> None:
    """JFS 3.27, annex 3, domain.md §4: referral_date <= start_date <= today; the start may
    be recorded retrospectively. The event carries start_date and provider_reference."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    await api.set_today("2026-03-20")
    started = await ok(
        client, rid, "start", {"start_date": start_date, "provider_reference": "CRM-42"}
    )
    assert started["status"] == "started"
    assert started["start_date"] == start_date
    assert started["closed_by"] is None
    event = (await history(client, rid))[-1]
    assert event["type"] == "started"
    assert event["start_date"] == start_date
    assert event["provider_reference"] == "CRM-42"


@pytest.mark.parametrize("start_date", ["2026-03-01", "2026-02-01", "2026-03-21", "2026-12-31"])
async def test_start_date_out_of_range_jfs_3_27(
    client: AsyncClient, api: Api, start_date: str
) -> None:
    """JFS 3.27, domain.md §4: a start date before the referral date or after today is
    422 date-out-of-range; nothing changes."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    await api.set_today("2026-03-20")
    before = await snapshot(client, rid)
    assert_problem(
        await act(client, rid, "start", {"start_date": start_date}), 422, "date-out-of-range"
    )
    await assert_unchanged(client, rid, before)


# --- end (JFS annex 2) -----------------------------------------------------------------------


async def started_referral(client: AsyncClient, api: Api) -> str:
    """A referral made 2 March, started 3 March; today is 10 March."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    await api.set_today("2026-03-10")
    await ok(client, rid, "start", {"start_date": "2026-03-03"})
    return rid


@pytest.mark.parametrize("end_code", [1, 36, 39, 43])
async def test_end_with_provider_codes_jfs_annex_2(
    client: AsyncClient, api: Api, end_code: int
) -> None:
    """JFS annex 2, domain.md §4: codes 1, 36, 39 and 43 end a started referral; closed by
    the provider; the event carries the code and the dates."""
    rid = await started_referral(client, api)
    body = {"end_code": end_code, "end_date": "2026-03-09", "last_engagement_date": "2026-03-06"}
    ended = await ok(client, rid, "end", body)
    assert ended["status"] == "ended"
    assert ended["end_code"] == end_code
    assert ended["end_date"] == "2026-03-09"
    assert ended["last_engagement_date"] == "2026-03-06"
    assert ended["closed_by"] == "provider"
    assert ended["allowed_actions"] == []
    event = (await history(client, rid))[-1]
    assert event["type"] == "ended"
    assert event["end_code"] == end_code
    assert event["end_date"] == "2026-03-09"
    assert event["last_engagement_date"] == "2026-03-06"


async def test_end_code_45_is_system_only_jfs_5_08(client: AsyncClient, api: Api) -> None:
    """JFS 5.08, annex 2, domain.md §4: code 45 (End of Allotted Time) is set by the system
    only; a provider sending it gets 422 end-code-automated-only."""
    rid = await started_referral(client, api)
    before = await snapshot(client, rid)
    body = {"end_code": 45, "end_date": "2026-03-09", "last_engagement_date": "2026-03-06"}
    assert_problem(await act(client, rid, "end", body), 422, "end-code-automated-only")
    await assert_unchanged(client, rid, before)


@pytest.mark.parametrize("end_code", [37, 46])
async def test_end_codes_37_46_need_policy_reference_jfs_annex_2(
    client: AsyncClient, api: Api, end_code: int
) -> None:
    """JFS annex 2, domain.md §4: codes 37 and 46 only with a policy_reference: without it
    422 policy-reference-required (nothing changes), with it 200 and recorded."""
    rid = await started_referral(client, api)
    body: dict[str, Any] = {
        "end_code": end_code,
        "end_date": "2026-03-10",
        "last_engagement_date": "2026-03-03",
    }
    before = await snapshot(client, rid)
    assert_problem(await act(client, rid, "end", body), 422, "policy-reference-required")
    await assert_unchanged(client, rid, before)
    body["policy_reference"] = "PT/2026/117"
    ended = await ok(client, rid, "end", body)
    assert ended["end_code"] == end_code
    assert ended["policy_reference"] == "PT/2026/117"
    event = (await history(client, rid))[-1]
    assert event["policy_reference"] == "PT/2026/117"
    assert event["end_code"] == end_code


@pytest.mark.parametrize("end_code", [0, 2, 38, 44, 47, "1x"])
async def test_unknown_end_code_is_validation_error_jfs_annex_2(
    client: AsyncClient, api: Api, end_code: Any
) -> None:
    """JFS annex 2, api-contract.md (Errors): an end code outside the table is 422
    validation-error."""
    rid = await started_referral(client, api)
    body = {"end_code": end_code, "end_date": "2026-03-09", "last_engagement_date": "2026-03-06"}
    assert_problem(await act(client, rid, "end", body), 422, "validation-error")
    assert (await get(client, rid))["status"] == "started"


@pytest.mark.parametrize(
    ("last_engagement_date", "end_date"),
    [
        ("2026-03-02", "2026-03-09"),  # last engagement before the start date
        ("2026-03-06", "2026-03-05"),  # end before last engagement
        ("2026-03-06", "2026-03-11"),  # end in the future
        ("2026-03-11", "2026-03-11"),  # both in the future
    ],
)
async def test_end_dates_out_of_range_jfs_annex_2(
    client: AsyncClient, api: Api, last_engagement_date: str, end_date: str
) -> None:
    """JFS annex 2, domain.md §4: start_date <= last_engagement_date <= end_date <= today,
    else 422 date-out-of-range; nothing changes."""
    rid = await started_referral(client, api)
    before = await snapshot(client, rid)
    body = {"end_code": 1, "end_date": end_date, "last_engagement_date": last_engagement_date}
    assert_problem(await act(client, rid, "end", body), 422, "date-out-of-range")
    await assert_unchanged(client, rid, before)


@pytest.mark.parametrize(
    ("last_engagement_date", "end_date"),
    [("2026-03-03", "2026-03-03"), ("2026-03-03", "2026-03-10"), ("2026-03-10", "2026-03-10")],
)
async def test_end_dates_boundaries_allowed_jfs_annex_2(
    client: AsyncClient, api: Api, last_engagement_date: str, end_date: str
) -> None:
    """JFS annex 2, domain.md §4: the inequalities are inclusive."""
    rid = await started_referral(client, api)
    body = {"end_code": 1, "end_date": end_date, "last_engagement_date": last_engagement_date}
    ended = await ok(client, rid, "end", body)
    assert (ended["last_engagement_date"], ended["end_date"]) == (last_engagement_date, end_date)


# --- back-out (SES 3.15, JFS 3.37-3.38) ------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [PROVIDER_A, JCP, ADMIN, auth("provider", scopes=("claims",))],
    ids=["provider", "jcp", "admin", "provider-claims"],
)
async def test_back_out_is_post_only_ses_3_15(
    client: AsyncClient, api: Api, headers: dict[str, str]
) -> None:
    """SES 3.15, JFS 3.37, domain.md §1, §4: only POST backs out a start; others 403."""
    await setup(api)
    rid = await new_referral(client, "started")
    before = await snapshot(client, rid)
    response = await act(client, rid, "back-out", BODIES["back-out"], headers=headers)
    assert_problem(response, 403, "forbidden")
    await assert_unchanged(client, rid, before)


@pytest.mark.parametrize("action", PROVIDER_ACTIONS)
@pytest.mark.parametrize("headers", [JCP, POST, ADMIN], ids=["jcp", "post", "admin"])
async def test_provider_actions_are_provider_only_domain_4(
    client: AsyncClient, api: Api, action: str, headers: dict[str, str]
) -> None:
    """domain.md §4 (by: provider), §1: jcp, post and admin get 403 for provider actions."""
    await setup(api)
    rid = await new_referral(client, "accepted" if action != "end" else "started")
    before = await snapshot(client, rid)
    response = await act(client, rid, action, BODIES[action], headers=headers)
    assert_problem(response, 403, "forbidden")
    await assert_unchanged(client, rid, before)


async def test_back_out_returns_to_accepted_and_clears_start_ses_3_15(
    client: AsyncClient, api: Api
) -> None:
    """SES 3.15, JFS 3.37-3.38, domain.md §4: back-out takes a started referral back to
    accepted with the start cleared; one `backed_out` event by POST with the reason."""
    await setup(api)
    rid = await new_referral(client, "started")
    await api.set_clock("2026-03-03T11:00:00Z")
    backed = await ok(client, rid, "back-out", {"reason": "PRaP14: duplicate referral"})
    assert backed["status"] == "accepted"
    assert backed["start_date"] is None
    assert backed["closed_by"] is None
    assert backed["cancel_overdue"] is False
    assert backed["allowed_actions"] == []  # POST's view: nothing more to do
    event = (await history(client, rid))[-1]
    assert event["type"] == "backed_out"
    assert event["reason"] == "PRaP14: duplicate referral"
    assert event["actor"]["role"] == "post"
    assert instant(event["occurred_at"]) == instant("2026-03-03T11:00:00Z")
    # A second back-out: the referral is no longer started.
    response = await act(client, rid, "back-out", BODIES["back-out"], headers=POST)
    assert_problem(response, 409, "invalid-transition")


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("start", {"start_date": TODAY}),
        ("end", BODIES["end"]),
        ("did-not-attend", {}),
        ("cancel", {"reason": "no_contact"}),
        ("cancel", {"reason": "did_not_attend"}),
        ("reject", {"reason": "duplicate"}),
        ("acknowledge", {}),
        ("accept", {}),
    ],
)
async def test_after_back_out_only_did_not_start_cancel_jfs_3_38(
    client: AsyncClient, api: Api, action: str, body: dict[str, Any]
) -> None:
    """JFS 3.37-3.38, SES 3.15, domain.md §4: after a back-out the provider's only allowed
    action is to cancel with did_not_start; anything else is 409 invalid-transition."""
    await setup(api)
    rid = await new_referral(client, "backed_out")
    before = await snapshot(client, rid)
    assert_problem(await act(client, rid, action, body), 409, "invalid-transition")
    await assert_unchanged(client, rid, before)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("cancel", {"reason": "did_not_start"}),
        ("did-not-start", {}),
        ("did-not-start", {"initial_meeting_date": TODAY}),
    ],
)
async def test_after_back_out_cancel_did_not_start_allowed_jfs_3_38(
    client: AsyncClient, api: Api, action: str, body: dict[str, Any]
) -> None:
    """JFS 3.38, SES 3.15: after a back-out the provider cancels with did_not_start."""
    await setup(api)
    rid = await new_referral(client, "backed_out")
    referral = await get(client, rid, PROVIDER_A)
    assert sorted(referral["allowed_actions"]) == ["cancel", "did-not-start"]
    cancelled = await ok(client, rid, action, body)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation_reason"] == "did_not_start"
    assert cancelled["closed_by"] == "provider"
    assert cancelled["cancel_overdue"] is False


async def test_cancel_overdue_after_24_hours_jfs_3_38(client: AsyncClient, api: Api) -> None:
    """JFS 3.38, SES 3.15, domain.md §4: past 24 hours after a back-out without the
    did_not_start cancel, the referral shows cancel_overdue: true (nothing closes it); the
    cancel is still allowed, and then the flag is false."""
    await setup(api)
    rid = await new_referral(client, "started")
    await api.set_clock("2026-03-02T12:00:00Z")
    await ok(client, rid, "back-out")
    assert (await get(client, rid))["cancel_overdue"] is False
    await api.set_clock("2026-03-03T11:59:00Z")
    for headers in (JCP, POST, PROVIDER_A):
        assert (await get(client, rid, headers))["cancel_overdue"] is False
    await api.set_clock("2026-03-03T12:01:00Z")
    for headers in (JCP, POST, PROVIDER_A):
        referral = await get(client, rid, headers)
        assert referral["cancel_overdue"] is True
        assert referral["status"] == "accepted"
    listed = (await client.get("/v1/referrals", headers=PROVIDER_A)).json()["items"]
    assert [r["cancel_overdue"] for r in listed] == [True]
    await api.set_today("2026-03-09")
    overdue = await get(client, rid, PROVIDER_A)
    assert overdue["cancel_overdue"] is True
    assert sorted(overdue["allowed_actions"]) == ["cancel", "did-not-start"]
    cancelled = await ok(client, rid, "cancel", {"reason": "did_not_start"})
    assert cancelled["cancel_overdue"] is False
    assert (await get(client, rid))["cancel_overdue"] is False


async def test_cancel_overdue_false_when_never_backed_out_jfs_3_38(
    client: AsyncClient, api: Api
) -> None:
    """JFS 3.38: the flag concerns backed-out starts only."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    await api.set_today("2026-03-20")
    assert (await get(client, rid))["cancel_overdue"] is False


# --- invalid transitions and terminal states (domain.md §4) ----------------------------------

INVALID = [
    (state, action)
    for state in STATES
    for action in (*PROVIDER_ACTIONS, "back-out")
    if state not in ALLOWED_FROM[action]
]


@pytest.mark.parametrize(("state", "action"), INVALID)
async def test_invalid_transition_changes_nothing_domain_4(
    client: AsyncClient, api: Api, state: str, action: str
) -> None:
    """domain.md §4: any other action in any other state is 409 invalid-transition and
    changes nothing (version, status, history); terminal states (rejected, cancelled,
    ended) accept no further action."""
    await setup(api)
    rid = await new_referral(client, state)
    before = await snapshot(client, rid)
    headers = POST if action == "back-out" else PROVIDER_A
    response = await act(client, rid, action, BODIES[action], headers=headers)
    assert_problem(response, 409, "invalid-transition")
    await assert_unchanged(client, rid, before)
    assert (await get(client, rid)) == before[0]


# --- events, versions, ETag, closed_by (domain.md §4, api-contract.md) -----------------------

STEPS: list[tuple[str, dict[str, Any], str, str, dict[str, Any]]] = [
    # action, body, clock, expected event type, fields the event carries
    ("acknowledge", {}, "2026-03-02T11:00:00Z", "acknowledged", {}),
    ("accept", {}, "2026-03-03T09:15:00Z", "accepted", {}),
    (
        "start",
        {"start_date": "2026-03-04", "provider_reference": "CRM-1"},
        "2026-03-05T16:30:00Z",
        "started",
        {"start_date": "2026-03-04", "provider_reference": "CRM-1"},
    ),
    (
        "back-out",
        {"reason": "start recorded twice"},
        "2026-03-06T08:00:00Z",
        "backed_out",
        {"reason": "start recorded twice"},
    ),
    (
        "did-not-start",
        {"initial_meeting_date": "2026-03-04", "note": "declined"},
        "2026-03-06T13:00:00Z",
        "did_not_start",
        {"initial_meeting_date": "2026-03-04", "note": "declined"},
    ),
]


async def test_each_action_adds_one_event_and_bumps_version_domain_4(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §4 (every change is an event; history append-only), api-contract.md
    (Writes): each successful action adds exactly one event with type, occurred_at (the
    sandbox clock), actor {sub, role, provider_id} and the fields it carried; version grows
    by one and the ETag header is "<version>"; closed_by is null while open."""
    provider = auth("provider", provider_id=PROVIDER, sub="delivery-alice")
    post = auth("post", sub="post-bob")
    await setup(api)
    created = await create_referral(client)
    rid, version = created["id"], created["version"]
    seen = await history(client, rid)
    for action, body, clock, event_type, fields in STEPS:
        await api.set_clock(clock)
        headers = post if action == "back-out" else provider
        response = await act(client, rid, action, body, headers=headers)
        assert response.status_code == 200, (action, response.text)
        referral = response.json()
        version += 1
        assert referral["version"] == version, action
        assert response.headers["etag"] == f'"{version}"'
        fetched = await client.get(f"/v1/referrals/{rid}", headers=JCP)
        assert fetched.headers["etag"] == f'"{version}"'
        events = await history(client, rid)
        assert events[: len(seen)] == seen, "history is append-only"
        assert len(events) == len(seen) + 1, action
        event = events[-1]
        assert event["type"] == event_type
        assert instant(event["occurred_at"]) == instant(clock)
        if action == "back-out":
            assert event["actor"] == {"sub": "post-bob", "role": "post", "provider_id": None}
        else:
            assert event["actor"] == {
                "sub": "delivery-alice",
                "role": "provider",
                "provider_id": PROVIDER,
            }
        for name, value in fields.items():
            assert event[name] == value, (action, name)
        assert event["version"] == version
        assert event["status"] == referral["status"]
        expected_closed = "provider" if referral["status"] == "cancelled" else None
        assert referral["closed_by"] == expected_closed, action
        seen = events
    assert [e["type"] for e in seen] == ["created"] + [s[3] for s in STEPS]
    # The events are in recording order, oldest first.
    times = [instant(e["occurred_at"]) for e in seen]
    assert times == sorted(times)


@pytest.mark.parametrize(
    ("state", "closing"),
    [
        ("referred", ("reject", {"reason": "duplicate"})),
        ("acknowledged", ("cancel", {"reason": "no_contact"})),
        ("accepted", ("did-not-attend", {})),
        ("accepted", ("did-not-start", {})),
        ("started", ("end", BODIES["end"])),
    ],
)
async def test_closed_by_provider_and_null_while_open_domain_4(
    client: AsyncClient, api: Api, state: str, closing: tuple[str, dict[str, Any]]
) -> None:
    """api-contract.md (closed_by), domain.md §4: null while open, `provider` after a
    provider's reject, cancel, DNA, DNS or end; version +1 and ETag on the closing action."""
    await setup(api)
    rid = await new_referral(client, state)
    open_referral = await get(client, rid)
    assert open_referral["closed_by"] is None
    action, body = closing
    response = await act(client, rid, action, body)
    assert response.status_code == 200, response.text
    closed = response.json()
    assert closed["closed_by"] == "provider"
    assert closed["version"] == open_referral["version"] + 1
    assert response.headers["etag"] == f'"{closed["version"]}"'
    event = (await history(client, rid))[-1]
    assert event["actor"]["role"] == "provider"
    assert event["actor"]["provider_id"] == PROVIDER
    assert instant(event["occurred_at"]) == NOON


@pytest.mark.parametrize("state", ["acknowledged", "accepted", "started"])
async def test_closed_by_null_in_open_states_domain_4(
    client: AsyncClient, api: Api, state: str
) -> None:
    """api-contract.md (closed_by): null while the referral is open."""
    await setup(api)
    rid = await new_referral(client, state)
    for headers in (JCP, POST, PROVIDER_A):
        assert (await get(client, rid, headers))["closed_by"] is None


# --- allowed_actions (domain.md §4, the transition table) ------------------------------------

CLAIMS_ONLY = auth("provider", provider_id=PROVIDER, scopes=("claims",))

ALLOWED_ACTIONS = {
    "referred": {"acknowledge", "accept", "reject"},
    "acknowledged": {"accept", "reject", "cancel", "did-not-attend", "did-not-start"},
    "accepted": {"cancel", "did-not-attend", "did-not-start", "start"},
    "started": {"end"},
    "backed_out": {"cancel", "did-not-start"},
    "ended": set(),
    "rejected": set(),
    "cancelled": set(),
}


@pytest.mark.parametrize("state", list(ALLOWED_ACTIONS))
async def test_allowed_actions_by_role_and_state_domain_4(
    client: AsyncClient, api: Api, state: str
) -> None:
    """domain.md §4, §1: `allowed_actions` lists what this caller may do next: the provider
    (scope referrals) its lifecycle actions, jcp nothing, POST only back-out of a started
    referral, a provider with only the `claims` scope nothing."""
    await setup(api)
    rid = await new_referral(client, state)
    provider = await get(client, rid, PROVIDER_A)
    assert set(provider["allowed_actions"]) == ALLOWED_ACTIONS[state]
    assert len(provider["allowed_actions"]) == len(ALLOWED_ACTIONS[state])
    assert (await get(client, rid, JCP))["allowed_actions"] == []
    post = await get(client, rid, POST)
    assert post["allowed_actions"] == (["back-out"] if state == "started" else [])
    assert (await get(client, rid, CLAIMS_ONLY))["allowed_actions"] == []
    # The same in lists and searches.
    listed = (await client.get("/v1/referrals", headers=PROVIDER_A)).json()["items"]
    assert set(listed[0]["allowed_actions"]) == ALLOWED_ACTIONS[state]
    found = await client.post("/v1/referrals/search", headers=POST, json={"nino": "AB123456C"})
    assert found.json()["items"][0]["allowed_actions"] == post["allowed_actions"]


async def test_allowed_actions_follow_the_deadline_jfs_3_07(client: AsyncClient, api: Api) -> None:
    """JFS 3.07-3.08, domain.md §4: once the acknowledgement deadline has passed, a referred
    referral offers the provider only reject; an acknowledged one still offers accept."""
    await setup(api)
    referred = (await create_referral(client))["id"]
    acknowledged = await new_referral(client, "acknowledged", nino="CE123456D")
    await api.set_today("2026-03-04")
    assert (await get(client, referred, PROVIDER_A))["allowed_actions"] == ["reject"]
    assert set((await get(client, acknowledged, PROVIDER_A))["allowed_actions"]) == {
        "accept",
        "reject",
        "cancel",
        "did-not-attend",
        "did-not-start",
    }


async def test_allowed_actions_in_action_responses_domain_4(client: AsyncClient, api: Api) -> None:
    """domain.md §4: each action's response carries the caller's next actions."""
    await setup(api)
    created = await create_referral(client)
    assert created["allowed_actions"] == []  # the creator is jcp
    rid = created["id"]
    assert (
        set((await ok(client, rid, "acknowledge"))["allowed_actions"])
        == ALLOWED_ACTIONS["acknowledged"]
    )
    assert set((await ok(client, rid, "accept"))["allowed_actions"]) == ALLOWED_ACTIONS["accepted"]
    assert (await ok(client, rid, "start"))["allowed_actions"] == ["end"]
    assert (await ok(client, rid, "back-out"))["allowed_actions"] == []


@pytest.mark.parametrize("action", PROVIDER_ACTIONS)
async def test_claims_only_provider_may_not_act_domain_1(
    client: AsyncClient, api: Api, action: str
) -> None:
    """domain.md §1: lifecycle actions need the `referrals` scope: 403 with only `claims`."""
    await setup(api)
    rid = await new_referral(client, "accepted" if action != "end" else "started")
    before = await snapshot(client, rid)
    response = await act(client, rid, action, BODIES[action], headers=CLAIMS_ONLY)
    assert_problem(response, 403, "forbidden")
    await assert_unchanged(client, rid, before)


async def test_other_provider_cannot_act_domain_1(client: AsyncClient, api: Api) -> None:
    """domain.md §1: another provider's referral answers 404, as for an unknown id."""
    await setup(api)
    rid = await new_referral(client, "referred")
    before = await snapshot(client, rid)
    assert_problem(await act(client, rid, "accept", headers=PROVIDER_B), 404, "not-found")
    await assert_unchanged(client, rid, before)


# --- order of checks, If-Match, recording order (api-contract.md) ----------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [({}, 401, "unauthenticated"), (POST, 403, "forbidden")],
    ids=["no-token", "wrong-role"],
)
async def test_auth_checked_before_body_is_parsed_order_of_checks(
    client: AsyncClient, api: Api, headers: dict[str, str], status: int, code: str
) -> None:
    """api-contract.md (order of checks): 401 and 403 come before 422 validation-error,
    also for a body that is not valid JSON (domain.md §4 reject, by provider only)."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    response = await client.post(
        f"/v1/referrals/{rid}/reject",
        headers={**headers, "content-type": "application/json"},
        content=b'{"reason": ',
    )
    assert_problem(response, status, code)


async def test_auth_checked_before_body_shape_order_of_checks(
    client: AsyncClient, api: Api
) -> None:
    """api-contract.md (order of checks): 401, then 403, then 422 validation-error, then 404
    (the body's shape is checked before the referral is looked up)."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    bad = {"reason": "bogus"}
    assert_problem(
        await act(client, rid, "reject", bad, headers={"X": "y"}), 401, "unauthenticated"
    )
    assert_problem(await act(client, rid, "reject", bad, headers=POST), 403, "forbidden")
    assert_problem(await act(client, rid, "reject", bad), 422, "validation-error")
    assert_problem(await act(client, "no-such-id", "reject", bad), 422, "validation-error")
    assert_problem(await act(client, "no-such-id", "reject", {"reason": "other"}), 404, "not-found")


async def test_stale_if_match_is_412_and_changes_nothing_api_writes(
    client: AsyncClient, api: Api
) -> None:
    """api-contract.md (Writes), domain.md §4: an action with an If-Match that no longer
    matches the ETag is 412 precondition-failed (before the domain rules); the current one
    is accepted."""
    await setup(api)
    rid = await new_referral(client, "accepted")
    current = await client.get(f"/v1/referrals/{rid}", headers=JCP)
    etag = current.headers["etag"]
    before = await snapshot(client, rid)
    stale = f'"{current.json()["version"] - 1}"'
    for action in ("start", "acknowledge"):  # a valid action and an invalid transition
        response = await client.post(
            f"/v1/referrals/{rid}/{action}",
            headers={**PROVIDER_A, "If-Match": stale},
            json=BODIES[action],
        )
        assert_problem(response, 412, "precondition-failed")
    await assert_unchanged(client, rid, before)
    response = await client.post(
        f"/v1/referrals/{rid}/start", headers={**PROVIDER_A, "If-Match": etag}, json=BODIES["start"]
    )
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{before[0]["version"] + 1}"'


async def test_history_in_recording_order_at_one_instant_domain_4(
    client: AsyncClient, api: Api
) -> None:
    """domain.md §4 (append-only history), api-contract.md (recording order also when
    several events share a timestamp): with the sandbox clock standing still, the history
    lists the events in the order they were recorded, versions 1 apart."""
    await setup(api)
    rid = await new_referral(client, "ended")
    events = await history(client, rid)
    assert [e["type"] for e in events] == [
        "created",
        "acknowledged",
        "accepted",
        "started",
        "ended",
    ]
    assert {instant(e["occurred_at"]) for e in events} == {NOON}
    versions = [e["version"] for e in events]
    assert versions == list(range(versions[0], versions[0] + len(events)))
    assert (await get(client, rid))["version"] == versions[-1]


@pytest.mark.parametrize("nino", ["ab 12 34 56 c ", " AB 12 34 56 C ", "AB 12 34 56  C"])
async def test_nino_spaces_normalised_whatever_their_number_domain_5(
    client: AsyncClient, api: Api, nino: str
) -> None:
    """domain.md §5: "Normalise case and spaces": surrounding or doubled spaces around a
    valid NINO are normalised away (AB123456C), not refused."""
    await setup(api)
    response = await create(client, referral_body(nino=nino))
    assert response.status_code == 201, response.text
    assert response.json()["participant"]["nino"] == "AB123456C"
