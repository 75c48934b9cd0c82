from __future__ import annotations

from dataclasses import dataclass, fields

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


@dataclass(frozen=True, slots=True)
class ProgrammeParams:
    """A programme's parameters, read once per process: the catalogue is reference data,
    changed only by migration (a deploy restarts the service)."""

    code: str
    name: str
    acknowledge_working_days: int
    initial_meeting_working_days: int | None
    outcome_recorded_working_days: int | None
    auto_dna_days: int
    allotted_days: int
    max_re_referrals: int
    funds_service_fee: bool
    funds_attachment: bool
    funds_job_outcome: bool
    funds_sustainment: bool
    job_outcome_min_hours: int | None


_catalogues: dict[str, dict[str, ProgrammeParams]] = {}


async def programme_params(session: AsyncSession, code: str) -> ProgrammeParams:
    database = str(session.get_bind().engine.url)
    catalogue = _catalogues.get(database)
    if catalogue is None or code not in catalogue:
        rows = (await session.scalars(select(Programme))).all()
        names = [f.name for f in fields(ProgrammeParams)]
        catalogue = {
            p.code: ProgrammeParams(**{name: getattr(p, name) for name in names}) for p in rows
        }
        _catalogues[database] = catalogue
    return catalogue[code]
