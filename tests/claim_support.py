"""Helpers for the claims and payments tests (tests/claims/test_api.py, tests/payments/test_api.py).

Segregation of duties (GEN 122): the user who records a start or an end may not claim for
that referral, so lifecycle actions go through ``PROVIDER_A`` / ``PROVIDER_B`` (delivery
staff, sub ``provider-user``) and claims through separate claims clerks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from tests.helpers import (
    OTHER_PROVIDER,
    POST,
    PROVIDER,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    InFlight,
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


@pytest.fixture
async def racing(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client through an in-flight counter, to prove that racing requests overlapped
    (``client.in_flight``). Shared by the claims and payments tests through their conftest."""
    in_flight = InFlight(app)
    async with AsyncClient(
        transport=ASGITransport(app=in_flight), base_url="http://prap.test"
    ) as c:
        c.in_flight = in_flight  # type: ignore[attr-defined]
        yield c


def answer(response: Response, status: int = 200) -> dict[str, Any]:
    """The JSON body of an answer that must have this status."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


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
    return answer(await act(client, referral["id"], "accept", headers=delivery(provider_id)), 200)


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
    return answer(
        await act(
            client,
            referral["id"],
            "start",
            {"start_date": start_date},
            headers=starter or delivery(provider_id),
        ),
        200,
    )


async def end_referral(
    client: AsyncClient,
    referral: dict[str, Any],
    end_date: str,
    *,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    return answer(
        await act(
            client,
            referral["id"],
            "end",
            {"end_code": 1, "end_date": end_date, "last_engagement_date": end_date},
            headers=headers or delivery(referral["provider_id"]),
        ),
        200,
    )


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
    return answer(await claim(client, referral_id, claim_type, headers=headers, **fields), 201)


async def validate(client: AsyncClient, claim_id: str) -> dict[str, Any]:
    return answer(await client.post(f"/v1/claims/{claim_id}/validate", headers=POST, json={}), 200)


async def reject(client: AsyncClient, claim_id: str, reason: str = "no evidence") -> Response:
    return await client.post(f"/v1/claims/{claim_id}/reject", headers=POST, json={"reason": reason})


async def get_claim(
    client: AsyncClient, claim_id: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return answer(await client.get(f"/v1/claims/{claim_id}", headers=headers or POST), 200)


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
    return answer(await payment_run(client, month), 201)
