"""Small typed helpers: tokens, headers and factory calls over HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from httpx import AsyncClient, Response

from app.core.auth import Role, mint_token

TEST_SECRET = "test-secret-for-prap"

PROVIDER = "P100"
OTHER_PROVIDER = "P200"


def token(
    role: Role | str,
    *,
    sub: str | None = None,
    provider_id: str | None = None,
    scopes: tuple[str, ...] = ("referrals", "claims"),
) -> str:
    role = Role(role)
    if role is Role.provider and provider_id is None:
        provider_id = PROVIDER
    return mint_token(
        sub=sub or f"{role}-user",
        role=role,
        key=TEST_SECRET,
        provider_id=provider_id,
        scopes=scopes if role is Role.provider else (),
    )


def auth(
    role: Role | str,
    *,
    sub: str | None = None,
    provider_id: str | None = None,
    scopes: tuple[str, ...] = ("referrals", "claims"),
) -> dict[str, str]:
    return {
        "Authorization": "Bearer " + token(role, sub=sub, provider_id=provider_id, scopes=scopes)
    }


JCP = auth("jcp")
POST = auth("post")
ADMIN = auth("admin")
PROVIDER_A = auth("provider", provider_id=PROVIDER)
PROVIDER_B = auth("provider", provider_id=OTHER_PROVIDER)


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


class Api:
    """Factory calls over HTTP, with keyword defaults."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def set_clock(self, instant: str) -> None:
        response = await self.client.put("/v1/sandbox/clock", json={"now": instant})
        assert response.status_code == 200, response.text

    async def set_today(self, day: date | str) -> None:
        await self.set_clock(f"{day}T10:00:00Z")

    async def create_contract(
        self,
        *,
        provider_id: str = PROVIDER,
        programme: str = "JFS",
        start_date: str = "2020-01-01",
        end_date: str = "2030-12-31",
        monthly_service_fee_pence: int = 1_000_000,
        attachment_fee_pence: int | None = 50_000,
        job_outcome_fee_pence: int | None = 100_000,
        sustainment_fee_pence: int | None = 150_000,
        records_retention_end_date: str | None = None,
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/contracts",
            headers=ADMIN,
            json={
                "provider_id": provider_id,
                "programme": programme,
                "start_date": start_date,
                "end_date": end_date,
                "monthly_service_fee_pence": monthly_service_fee_pence,
                "attachment_fee_pence": attachment_fee_pence,
                "job_outcome_fee_pence": job_outcome_fee_pence,
                "sustainment_fee_pence": sustainment_fee_pence,
                "records_retention_end_date": records_retention_end_date,
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body


def referral_body(
    *,
    nino: str = "AB123456C",
    programme: str = "JFS",
    provider_id: str = PROVIDER,
    mappa: bool = False,
    with_contact_details: bool = True,
) -> dict[str, Any]:
    participant: dict[str, Any] = {
        "title": "Ms",
        "forename": "Ada",
        "surname": "Byron",
        "nino": nino,
        "date_of_birth": "1990-05-01",
        "email": "ada@example.org",
        "welsh_language": False,
    }
    if with_contact_details:
        participant |= {
            "address": {"lines": ["1 High Street", "Leeds"], "postcode": "LS1 1AA"},
            "phone": "0113 496 0000",
            "mobile": "07700 900000",
        }
    return {
        "programme": programme,
        "provider_id": provider_id,
        "special_customer_record": False,
        "participant": participant,
        "markers": {
            "mappa": mappa,
            "safeguard": False,
            "disadvantaged": False,
            "incident": False,
            "disabled": False,
        },
        "details": {"qualifications": "NVQ 2", "driving_licence": True, "aims": "Work"},
    }


async def create_referral(client: AsyncClient, **kwargs: Any) -> dict[str, Any]:
    response = await client.post("/v1/referrals", headers=JCP, json=referral_body(**kwargs))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def act(
    client: AsyncClient,
    referral_id: str,
    action: str,
    body: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    return await client.post(
        f"/v1/referrals/{referral_id}/{action}",
        headers=headers or PROVIDER_A,
        json=body if body is not None else {},
    )


@dataclass(frozen=True)
class Caller:
    """A named caller for tests that walk roles."""

    name: str
    role: str
    provider_id: str | None = None
    scopes: tuple[str, ...] = ()

    @property
    def headers(self) -> dict[str, str]:
        if self.role == "provider":
            return auth("provider", sub=self.name, provider_id=self.provider_id, scopes=self.scopes)
        return auth(self.role, sub=self.name)


class InFlight:
    """An outer ASGI wrapper around the real app counting requests in flight at once, so a
    race test can show that its requests overlapped (nothing of the app is replaced)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.now = 0
        self.peak = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1
