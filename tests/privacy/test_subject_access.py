"""Subject access (domain.md §10; api-contract.md exportSubjectAccess): everything held about
one NINO — referrals, their histories, claims, and who read them."""

from __future__ import annotations

from httpx import AsyncClient

from tests.claim_support import CLERK_A, started_referral
from tests.helpers import ADMIN, JCP, POST, PROVIDER_A, Api, act, assert_problem, create_referral


async def test_subject_access_exports_everything_held_about_one_nino(
    client: AsyncClient, api: Api
) -> None:
    """Referrals (with history), their claims and the read audit; nobody else's data; and
    the export is itself a recorded read."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="SES")
    referral = await started_referral(client, i=1, programme="SES")
    other = await create_referral(client, programme="SES", nino="HJ135792D")
    claim = await client.post(
        "/v1/claims",
        headers=CLERK_A,
        json={"referral_id": referral["id"], "claim_type": "attachment"},
    )
    assert claim.status_code == 201, claim.text
    await client.get(f"/v1/referrals/{referral['id']}", headers=PROVIDER_A)

    response = await client.post("/v1/subject-access", headers=POST, json={"nino": "ab100001c"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["id"] for r in body["referrals"]] == [referral["id"]]
    exported = body["referrals"][0]
    assert exported["participant"]["nino"] == "AB100001C"
    assert [e["type"] for e in exported["history"]] == ["created", "accepted", "started"]
    assert [c["id"] for c in body["claims"]] == [claim.json()["id"]]
    operations = [r["operation"] for r in body["reads"]]
    assert operations[0] == "createReferral"
    assert operations[-1] == "getReferral"
    assert all(r["referral_ids"] == [referral["id"]] for r in body["reads"])
    assert other["id"] not in response.text

    audit = await client.get(
        "/v1/audit/reads", headers=POST, params={"referral_id": referral["id"]}
    )
    assert audit.json()["items"][-1]["operation"] == "exportSubjectAccess"


async def test_subject_access_after_erasure_and_roles(client: AsyncClient, api: Api) -> None:
    """An erased referral is still linked by the digest, so the export lists it (ids,
    dates, status) with no personal data; only ``post`` may export."""
    await api.set_today("2026-03-02")
    await api.create_contract(programme="SES")
    referral = await create_referral(client, programme="SES", nino="HJ135792D")
    assert (await act(client, referral["id"], "reject", {"reason": "other"})).status_code == 200
    erase = f"/v1/referrals/{referral['id']}/erasure"
    assert (await client.post(erase, headers=POST, json={"reason": "GEN 136"})).status_code == 200
    body = (
        await client.post("/v1/subject-access", headers=POST, json={"nino": "HJ135792D"})
    ).json()
    assert [r["id"] for r in body["referrals"]] == [referral["id"]]
    assert body["referrals"][0]["participant"] is None
    assert body["referrals"][0]["history"][-1]["type"] == "erased"
    for headers in (JCP, ADMIN, PROVIDER_A):
        refused = await client.post(
            "/v1/subject-access", headers=headers, json={"nino": "HJ135792D"}
        )
        assert_problem(refused, 403, "forbidden")
    invalid = await client.post("/v1/subject-access", headers=POST, json={"nino": "QQ123456Z"})
    problem = assert_problem(invalid, 422, "validation-error")
    assert "QQ123456Z" not in invalid.text, problem
