"""Demo data for a fresh sandbox: contracts for provider P100 (idempotent)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from app.contracts.models import Contract
from app.core.clock import real_now
from app.core.database import create_engine, create_session_factory
from app.core.settings import Settings

DEMO_PROVIDER = "P100"


async def load_demo_data(settings: Settings) -> str:
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            existing = await session.execute(
                select(Contract.id).where(Contract.provider_id == DEMO_PROVIDER).limit(1)
            )
            if existing.first() is not None:
                return "demo data already loaded"
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
        return f"demo contracts loaded for provider {DEMO_PROVIDER}"
    finally:
        await engine.dispose()
