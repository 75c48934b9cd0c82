"""Changes of circumstances: `PATCH /v1/referrals/{id}/participant` (JFS 4.23-4.24, GEN
92-93, domain.md §5a, api-contract.md Referrals). Over HTTP, on both databases.

JFS 4.24: "Should DWP need to notify the Provider of a change of circumstance relating to a
participant (for example a change of contact details), you will be notified by either a
CEPD1 form or a UC78e form." Electronically, Jobcentre Plus updates the open referral.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from httpx import AsyncClient, Response

from tests.helpers import (
    JCP,
    POST,
    PROVIDER_A,
    Api,
    act,
    assert_problem,
    create_referral,
)
from tests.referrals.test_tenancy import settled_feed

MERGE_PATCH = "application/merge-patch+json"
DAY = "2026-03-02"


async def _patch(
    client: AsyncClient,
    referral_id: str,
    patch: dict[str, Any],
    *,
    content_type: str = MERGE_PATCH,
    headers: dict[str, str] | None = None,
) -> Response:
    return await client.patch(
        f"/v1/referrals/{referral_id}/participant",
        headers={**(headers or JCP), "content-type": content_type},
        content=json.dumps(patch),
    )


async def _history(client: AsyncClient, referral_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (
        await client.get(f"/v1/referrals/{referral_id}/history", headers=POST)
    ).json()["items"]
    return items


@pytest.mark.parametrize("content_type", [MERGE_PATCH, "application/json"])
async def test_merge_patch_changes_participant_jfs_4_24(
    client: AsyncClient, api: Api, content_type: str
) -> None:
    """JFS 4.23-4.24, domain.md §5a, RFC 7396: a merge patch sets members, `null` removes one
    and nested objects merge; `version` goes up and the ETag follows; one
    `participant_changed` event names the changed fields and never their values, in the
    history and the change feed (the provider's CRM learns of it)."""
    await api.set_today(DAY)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client)
    response = await _patch(
        client,
        referral["id"],
        {"phone": "0113 496 0999", "mobile": None, "address": {"postcode": "ls2 7ab"}},
        content_type=content_type,
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["version"] == referral["version"] + 1
    assert response.headers["etag"] == f'"{changed["version"]}"'
    participant = changed["participant"]
    assert participant["phone"] == "0113 496 0999"
    assert participant["mobile"] is None
    assert participant["address"] == {"lines": ["1 High Street", "Leeds"], "postcode": "LS2 7AB"}
    assert participant["nino"] == "AB123456C"
    assert participant["forename"] == "Ada"
    events = await _history(client, referral["id"])
    assert [e["type"] for e in events] == ["created", "participant_changed"]
    event = events[-1]
    assert event["changed_fields"] == ["address", "mobile", "phone"]
    assert event["actor"]["role"] == "jcp"
    assert event["status"] == "referred"
    assert "0999" not in str(event)
    assert "LS2" not in str(event)
    feed = [e for page in await settled_feed(client, PROVIDER_A, 2) for e in page]
    assert [(e["type"], e.get("changed_fields")) for e in feed][-1] == (
        "participant_changed",
        ["address", "mobile", "phone"],
    )
    shown = (await client.get(f"/v1/referrals/{referral['id']}", headers=PROVIDER_A)).json()
    assert shown["participant"]["phone"] == "0113 496 0999"


async def test_nino_cannot_change_domain_5a(client: AsyncClient, api: Api) -> None:
    """domain.md §5a: "the NINO cannot change": a patch naming `nino` is 422
    `validation-error`, nothing changed, and the NINO sent is not echoed."""
    await api.set_today(DAY)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client)
    for patch in ({"nino": "CE123456D"}, {"nino": None}, {"surname": "Lovelace", "nino": "x"}):
        response = await _patch(client, referral["id"], patch)
        assert_problem(response, 422, "validation-error")
        assert "CE123456D" not in response.text
    unchanged = (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()
    assert unchanged["version"] == referral["version"]
    assert [e["type"] for e in await _history(client, referral["id"])] == ["created"]


async def test_required_names_cannot_be_removed_domain_5a(client: AsyncClient, api: Api) -> None:
    """api-contract.md: the patched participant must still match the schema: removing the
    forename (`null`) or a malformed postcode is 422 `validation-error`, nothing changed."""
    await api.set_today(DAY)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client)
    for patch in ({"forename": None}, {"address": {"postcode": "NOT A CODE"}}, {"phone": 7}):
        assert_problem(await _patch(client, referral["id"], patch), 422, "validation-error")
    assert (await client.get(f"/v1/referrals/{referral['id']}", headers=POST)).json()[
        "version"
    ] == referral["version"]


async def test_mappa_referral_takes_no_contact_details_ses_3_32(
    client: AsyncClient, api: Api
) -> None:
    """SES 3.32, domain.md §2, §5a: "A MAPPA referral still takes no address, postcode or
    telephone numbers": such a patch is 422 `mappa-contact-details`; other fields may
    change."""
    await api.set_today(DAY)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client, mappa=True, with_contact_details=False)
    for patch in ({"phone": "0113 496 0000"}, {"address": {"postcode": "LS1 1AA"}}):
        response = await _patch(client, referral["id"], patch)
        assert_problem(response, 422, "mappa-contact-details")
    ok = await _patch(client, referral["id"], {"email": "new@example.org"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["mappa"] is True


async def test_closed_referral_cannot_change_domain_5a(client: AsyncClient, api: Api) -> None:
    """domain.md §5a: "A closed referral cannot be changed": 409 `invalid-transition`."""
    await api.set_today(DAY)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client)
    rejected = await act(client, referral["id"], "reject", {"reason": "other"})
    assert rejected.status_code == 200, rejected.text
    response = await _patch(client, referral["id"], {"phone": "0113 496 0999"})
    assert_problem(response, 409, "invalid-transition")


async def test_if_match_and_roles_api_contract(client: AsyncClient, api: Api) -> None:
    """api-contract.md: `updateParticipant` honours `If-Match` (a stale one is 412
    `precondition-failed`, the current one passes); only `jcp` may change a participant
    (providers and POST 403); an unknown referral is 404."""
    await api.set_today(DAY)
    await api.create_contract(programme="JFS")
    referral = await create_referral(client)
    stale = await _patch(
        client, referral["id"], {"title": "Dr"}, headers={**JCP, "If-Match": '"99"'}
    )
    assert_problem(stale, 412, "precondition-failed")
    current = await _patch(
        client,
        referral["id"],
        {"title": "Dr"},
        headers={**JCP, "If-Match": f'"{referral["version"]}"'},
    )
    assert current.status_code == 200, current.text
    for headers in (PROVIDER_A, POST):
        assert_problem(
            await _patch(client, referral["id"], {"title": "Mx"}, headers=headers),
            403,
            "forbidden",
        )
    assert_problem(await _patch(client, "NOSUCHREFERRAL", {"title": "Mx"}), 404, "not-found")
