"""Helpers for the claims and payments tests (tests/claims/test_api.py, tests/payments/test_api.py).

Segregation of duties (GEN 122): the user who records a start or an end may not claim for
that referral, so lifecycle actions go through ``PROVIDER_A`` / ``PROVIDER_B`` (delivery
staff, sub ``provider-user``) and claims through separate claims clerks.
"""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response

from tests.helpers import (
    OTHER_PROVIDER,
    POST,
    PROVIDER,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    act,
    auth,
    create_referral,
)

# Claims clerks: scope ``claims`` only, never the person who recorded a start or an end.
CLERK_A = auth("provider", sub="claims-clerk-a", provider_id=PROVIDER, scopes=("claims",))
CLERK_B = auth("provider", sub="claims-clerk-b", provider_id=OTHER_PROVIDER, scopes=("claims",))

# Distinct fees, so each amount shows which price it came from.
FEES = {
    "attachment_fee_pence": 12_345,
    "job_outcome_fee_pence": 67_890,
    "sustainment_fee_pence": 111_213,
}

DAY0 = "2026-03-02"  # a Monday: referral, acceptance and start all on this day


def nino(i: int) -> str:
    """A valid, distinct NINO per index (prefix AB, suffix C)."""
    return f"AB{100000 + i:06d}C"


async def contract(
    api: Api, programme: str, provider_id: str = PROVIDER, **overrides: Any
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {**FEES, **overrides}
    return await api.create_contract(provider_id=provider_id, programme=programme, **kwargs)


def delivery(provider_id: str) -> dict[str, str]:
    return PROVIDER_A if provider_id == PROVIDER else PROVIDER_B


async def accepted_referral(
    client: AsyncClient, *, i: int, programme: str, provider_id: str = PROVIDER
) -> dict[str, Any]:
    """A referral made today and accepted today (inside the acknowledgement window)."""
    referral = await create_referral(
        client, nino=nino(i), programme=programme, provider_id=provider_id
    )
    response = await act(client, referral["id"], "accept", headers=delivery(provider_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def started_referral(
    client: AsyncClient,
    *,
    i: int,
    programme: str,
    provider_id: str = PROVIDER,
    start_date: str | None = None,
    starter: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A referral made, accepted and started today (start date = today unless given)."""
    referral = await accepted_referral(client, i=i, programme=programme, provider_id=provider_id)
    start_date = start_date or referral["referral_date"]
    response = await act(
        client,
        referral["id"],
        "start",
        {"start_date": start_date},
        headers=starter or delivery(provider_id),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def end_referral(
    client: AsyncClient,
    referral: dict[str, Any],
    end_date: str,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await act(
        client,
        referral["id"],
        "end",
        {"end_code": 1, "end_date": end_date, "last_engagement_date": end_date},
        headers=headers or delivery(referral["provider_id"]),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def claim(
    client: AsyncClient,
    referral_id: str,
    claim_type: str,
    *,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    return await client.post(
        "/v1/claims",
        headers=headers or CLERK_A,
        json={"referral_id": referral_id, "claim_type": claim_type, **fields},
    )


async def claim_ok(
    client: AsyncClient,
    referral_id: str,
    claim_type: str,
    *,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    response = await claim(client, referral_id, claim_type, headers=headers, **fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def validate(client: AsyncClient, claim_id: str) -> dict[str, Any]:
    response = await client.post(f"/v1/claims/{claim_id}/validate", headers=POST, json={})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def reject(client: AsyncClient, claim_id: str, reason: str = "no evidence") -> Response:
    return await client.post(f"/v1/claims/{claim_id}/reject", headers=POST, json={"reason": reason})


async def get_claim(
    client: AsyncClient, claim_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = await client.get(f"/v1/claims/{claim_id}", headers=headers or POST)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def claim_history(client: AsyncClient, claim_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/claims/{claim_id}/history", headers=POST)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def validated_outcome(
    client: AsyncClient, referral_id: str, job_start_date: str, **fields: Any
) -> dict[str, Any]:
    body = await claim_ok(
        client,
        referral_id,
        "job_outcome",
        job_start_date=job_start_date,
        hours_per_week=fields.pop("hours_per_week", 16),
        basis=fields.pop("basis", "expected_13_weeks"),
        **fields,
    )
    return await validate(client, body["id"])


async def payment_run(
    client: AsyncClient, month: str, headers: dict[str, str] | None = None
) -> Response:
    return await client.post("/v1/payment-runs", headers=headers or POST, json={"month": month})


async def payment_run_ok(client: AsyncClient, month: str) -> dict[str, Any]:
    response = await payment_run(client, month)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
