"""Demo data for a fresh sandbox: contracts for provider P100 and a few referrals (idempotent).

Referrals go in through the API itself (in process), so they obey every rule.
"""

from __future__ import annotations

from datetime import date

from httpx import ASGITransport, AsyncClient
from sqlalchemy import select

import app.models  # noqa: F401  (every mapper registered before any query)
from app.contracts.models import Contract
from app.core.auth import Role, mint_token
from app.core.clock import real_now
from app.core.database import create_engine, create_session_factory
from app.core.settings import Settings

DEMO_PROVIDER = "P100"
DEMO_PARTICIPANTS = (
    ("Ada", "Byron", "AB123456C"),
    ("Grace", "Hopper", "CE654321A"),
    ("Alan", "Turing", "JK112233D"),
)


async def _load_contracts(settings: Settings) -> bool:
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            existing = await session.execute(
                select(Contract.id).where(Contract.provider_id == DEMO_PROVIDER).limit(1)
            )
            if existing.first() is not None:
                return False
            today = real_now().date()
            for programme, fee in (("JFS", 1_000_000), ("SES", 0), ("CWP", 0), ("FND", 0)):
                session.add(
                    Contract(
                        id=f"DEMO-{programme}",
                        provider_id=DEMO_PROVIDER,
                        programme=programme,
                        start_date=date(today.year - 1, 1, 1),
                        end_date=date(today.year + 2, 12, 31),
                        monthly_service_fee_pence=fee,
                        attachment_fee_pence=None if programme == "JFS" else 50_000,
                        job_outcome_fee_pence=100_000 if programme in {"SES", "FND"} else None,
                        sustainment_fee_pence=150_000 if programme in {"SES", "FND"} else None,
                        created_at=real_now(),
                    )
                )
        return True
    finally:
        await engine.dispose()


async def _load_referrals(settings: Settings) -> int:
    from app.main import create_app

    key = settings.jwt_verification_key
    if key is None or settings.jwt_public_key:
        return 0  # RS256: tokens come from an identity provider, not from us
    app = create_app(settings.model_copy(update={"scheduler": False}))

    def bearer(role: Role, sub: str, provider_id: str | None = None) -> dict[str, str]:
        token = mint_token(
            sub=sub, role=role, key=key, provider_id=provider_id, scopes=("referrals", "claims")
        )
        return {"Authorization": f"Bearer {token}"}

    jcp = bearer(Role.jcp, "demo-work-coach")
    provider = bearer(Role.provider, "demo-adviser", DEMO_PROVIDER)
    created = 0
    try:
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://demo") as c:
            for index, (forename, surname, nino) in enumerate(DEMO_PARTICIPANTS):
                body = {
                    "programme": "SES",
                    "provider_id": DEMO_PROVIDER,
                    "participant": {"forename": forename, "surname": surname, "nino": nino},
                }
                response = await c.post("/v1/referrals", headers=jcp, json=body)
                if response.status_code != 201:
                    continue
                created += 1
                referral_id = response.json()["id"]
                if index >= 1:
                    await c.post(f"/v1/referrals/{referral_id}/accept", headers=provider, json={})
                if index >= 2:
                    start = {"start_date": response.json()["referral_date"]}
                    await c.post(f"/v1/referrals/{referral_id}/start", headers=provider, json=start)
    finally:
        await app.state.engine.dispose()
    return created


async def load_demo_data(settings: Settings) -> str:
    contracts = await _load_contracts(settings)
    referrals = await _load_referrals(settings) if contracts else 0
    if not contracts:
        return "demo data already loaded"
    return f"demo data loaded for provider {DEMO_PROVIDER}: 4 contracts, {referrals} referrals"
