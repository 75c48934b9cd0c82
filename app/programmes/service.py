from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.programmes.models import Programme
from app.programmes.schemas import FundingElement, ProgrammeCode, ProgrammeOut


def funding_of(programme: Programme) -> list[FundingElement]:
    flags = {
        FundingElement.service_fee: programme.funds_service_fee,
        FundingElement.attachment: programme.funds_attachment,
        FundingElement.job_outcome: programme.funds_job_outcome,
        FundingElement.sustainment: programme.funds_sustainment,
    }
    return [element for element, funded in flags.items() if funded]


def to_out(programme: Programme) -> ProgrammeOut:
    return ProgrammeOut(
        code=ProgrammeCode(programme.code),
        name=programme.name,
        acknowledge_working_days=programme.acknowledge_working_days,
        initial_meeting_working_days=programme.initial_meeting_working_days,
        outcome_recorded_working_days=programme.outcome_recorded_working_days,
        auto_dna_days=programme.auto_dna_days,
        allotted_days=programme.allotted_days,
        max_re_referrals=programme.max_re_referrals,
        funding=funding_of(programme),
        job_outcome_min_hours=programme.job_outcome_min_hours,
    )


async def list_programmes(session: AsyncSession) -> list[ProgrammeOut]:
    rows = (await session.execute(select(Programme).order_by(Programme.code))).scalars()
    return [to_out(p) for p in rows]


async def get_programme(session: AsyncSession, code: str) -> Programme:
    programme = await session.get(Programme, code)
    if programme is None:  # the enum in the schema admits only seeded codes
        raise LookupError(code)
    return programme
