from __future__ import annotations

from dataclasses import dataclass, fields

from sqlalchemy.ext.asyncio import AsyncSession

from app.programmes import repository
from app.programmes.models import Programme
from app.programmes.schemas import AllottedFrom, FundingElement, ProgrammeCode, ProgrammeOut


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
        allotted_from=AllottedFrom(programme.allotted_from),
        exclusive=programme.exclusive,
        max_duration_working_days=programme.max_duration_working_days,
        max_re_referrals=programme.max_re_referrals,
        funding=funding_of(programme),
        job_outcome_min_hours=programme.job_outcome_min_hours,
    )


async def list_programmes(session: AsyncSession) -> list[ProgrammeOut]:
    return [to_out(p) for p in await repository.all_programmes(session)]


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
    allotted_from: AllottedFrom
    exclusive: bool
    max_duration_working_days: int | None
    max_re_referrals: int
    funds_service_fee: bool
    funds_attachment: bool
    funds_job_outcome: bool
    funds_sustainment: bool
    job_outcome_min_hours: int | None


_catalogues: dict[str, dict[str, ProgrammeParams]] = {}


async def catalogue(session: AsyncSession, code: str | None = None) -> dict[str, ProgrammeParams]:
    """Every programme's parameters, read once per process (and again for an unknown code)."""
    database = str(session.get_bind().engine.url)
    programmes = _catalogues.get(database)
    if programmes is None or (code is not None and code not in programmes):
        rows = await repository.all_programmes(session)
        names = [f.name for f in fields(ProgrammeParams)]
        programmes = {
            p.code: ProgrammeParams(
                **{name: getattr(p, name) for name in names}
                | {"allotted_from": AllottedFrom(p.allotted_from)}
            )
            for p in rows
        }
        _catalogues[database] = programmes
    return programmes


async def programme_params(session: AsyncSession, code: str) -> ProgrammeParams:
    return (await catalogue(session, code))[code]


async def funding_service_fee(session: AsyncSession) -> list[str]:
    """The programmes that pay a monthly service fee (GEN 16)."""
    return sorted(p.code for p in (await catalogue(session)).values() if p.funds_service_fee)


async def exclusive_programmes(session: AsyncSession) -> frozenset[str]:
    """HTW 70: the programmes whose open referrals bar referral to other provision."""
    return frozenset(p.code for p in (await catalogue(session)).values() if p.exclusive)
