"""Claim use cases: submit (provider), validate and reject (post), void on back-out, read.

Providers see and act on their own provider's claims only; every query starts from
``readable_claims``. Each change writes a claim event in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.claims import rules
from app.claims.models import Claim, ClaimEvent
from app.claims.schemas import ClaimCreate, ClaimEventOut, ClaimOut
from app.claims.states import ClaimEventType, ClaimStatus, ClaimType
from app.claims.transitions import (
    INITIAL_STATUS,
    LIVE_CLAIM_STATUSES,
    TRANSITIONS,
    VALIDATED_STATUSES,
    ClaimAction,
)
from app.contracts.models import Contract
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.etags import if_match_allows
from app.core.ids import new_id
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.core.problems import (
    DuplicateClaim,
    InvalidTransition,
    NotFound,
    PreconditionFailed,
    SegregationOfDuties,
)
from app.programmes.service import programme_params
from app.referrals.models import Referral, ReferralEvent
from app.referrals.repository import get_readable
from app.referrals.states import EventType


def readable_claims(principal: Principal) -> Select[Claim]:
    statement = select(Claim)
    if principal.is_provider:
        statement = statement.where(Claim.provider_id == principal.provider_id)
    return statement


async def _record(
    session: AsyncSession,
    claim: Claim,
    event_type: ClaimEventType,
    clock: Clock,
    actor: tuple[str, str, str | None],
    data: dict[str, Any] | None = None,
) -> None:
    sub, role, provider_id = actor
    session.add(
        ClaimEvent(
            claim_id=claim.id,
            type=event_type,
            status=claim.status,
            occurred_at=clock.now,
            actor_sub=sub,
            actor_role=role,
            actor_provider_id=provider_id,
            data=data or {},
        )
    )
    await session.flush()


def _actor(principal: Principal) -> tuple[str, str, str | None]:
    return principal.sub, str(principal.role), principal.provider_id


async def _recorded_start_or_end(
    session: AsyncSession, referral: Referral, principal: Principal
) -> bool:
    """GEN 122: did this person record the referral's start or end?"""
    statement = select(
        exists().where(
            ReferralEvent.referral_id == referral.id,
            ReferralEvent.type.in_([EventType.started, EventType.ended]),
            ReferralEvent.actor_sub == principal.sub,
            ReferralEvent.actor_provider_id == principal.provider_id,
        )
    )
    return bool(await session.scalar(statement))


async def has_claimed_for(session: AsyncSession, referral_id: str, principal: Principal) -> bool:
    """GEN 122, the other way round: has this person claimed for the referral?"""
    statement = select(
        exists().where(
            Claim.referral_id == referral_id,
            Claim.submitted_by == principal.sub,
            Claim.provider_id == principal.provider_id,
        )
    )
    return bool(await session.scalar(statement))


async def _validated_outcome(session: AsyncSession, referral_id: str) -> Claim | None:
    statement = select(Claim).where(
        Claim.referral_id == referral_id,
        Claim.claim_type == ClaimType.job_outcome,
        Claim.status.in_([str(s) for s in VALIDATED_STATUSES]),
    )
    return (await session.scalars(statement)).first()


async def _live_claim_exists(session: AsyncSession, referral_id: str, claim_type: str) -> bool:
    statement = select(
        exists().where(
            Claim.referral_id == referral_id,
            Claim.claim_type == claim_type,
            Claim.status.in_([str(s) for s in LIVE_CLAIM_STATUSES]),
        )
    )
    return bool(await session.scalar(statement))


async def create_claim(
    session: AsyncSession, clock: Clock, principal: Principal, body: ClaimCreate
) -> ClaimOut:
    referral = await get_readable(session, principal, body.referral_id, for_update=True)
    if await _recorded_start_or_end(session, referral, principal):
        raise SegregationOfDuties()
    if await _live_claim_exists(session, referral.id, body.claim_type):
        raise DuplicateClaim()
    programme = await programme_params(session, referral.programme)
    contract = await session.get(Contract, referral.contract_id)
    assert contract is not None
    job_start_date = body.job_start_date
    match body.claim_type:
        case ClaimType.attachment:
            amount = rules.check_funded(
                body.claim_type, programme.funds_attachment, contract.attachment_fee_pence
            )
            rules.check_attachment(referral.start_date)
        case ClaimType.job_outcome:
            amount = rules.check_funded(
                body.claim_type, programme.funds_job_outcome, contract.job_outcome_fee_pence
            )
            rules.check_job_outcome(
                start_date=referral.start_date,
                end_date=referral.end_date,
                job_start_date=body.job_start_date,
                hours_per_week=body.hours_per_week,
                basis=body.basis,
                min_hours=programme.job_outcome_min_hours,
                today=clock.today,
            )
        case ClaimType.sustainment:
            amount = rules.check_funded(
                body.claim_type, programme.funds_sustainment, contract.sustainment_fee_pence
            )
            outcome = await _validated_outcome(session, referral.id)
            job_start_date = outcome.job_start_date if outcome else None
            rules.check_sustainment(
                outcome_validated=outcome is not None,
                job_start_date=job_start_date,
                weeks_in_work_last_30=body.weeks_in_work_last_30,
                today=clock.today,
            )
    claim = Claim(
        id=new_id(),
        referral_id=referral.id,
        contract_id=contract.id,
        provider_id=referral.provider_id,
        programme=referral.programme,
        claim_type=body.claim_type,
        status=INITIAL_STATUS,
        amount_pence=amount,
        job_start_date=job_start_date,
        hours_per_week=body.hours_per_week,
        basis=body.basis,
        weeks_in_work_last_30=body.weeks_in_work_last_30,
        evidence_reference=body.evidence_reference,
        submitted_by=principal.sub,
        submitted_at=clock.now,
        updated_at=clock.now,
    )
    session.add(claim)
    try:
        await session.flush()
    except IntegrityError as error:
        # A racing claim of the same type got there first (unique index on live claims).
        raise DuplicateClaim() from error
    await _record(session, claim, ClaimEventType.submitted, clock, _actor(principal))
    return ClaimOut.model_validate(claim)


async def get_readable_claim(
    session: AsyncSession, principal: Principal, claim_id: str, *, for_update: bool = False
) -> Claim:
    statement = readable_claims(principal).where(Claim.id == claim_id)
    if for_update:
        statement = statement.with_for_update()
    claim = (await session.scalars(statement)).one_or_none()
    if claim is None:
        raise NotFound("No such claim.")
    return claim


async def _decide(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    claim_id: str,
    action: ClaimAction,
    if_match: str | None,
    reason: str | None = None,
) -> ClaimOut:
    """Validate or reject, as the claim state table allows (domain.md §8)."""
    transition = TRANSITIONS[action]
    claim = await get_readable_claim(session, principal, claim_id, for_update=True)
    if if_match is not None and not if_match_allows(if_match, claim.version):
        raise PreconditionFailed()
    if not transition.allows(claim.status):
        raise InvalidTransition("Only a submitted claim can be validated or rejected.")
    claim.status = transition.target
    claim.updated_at = clock.now
    if action is ClaimAction.validate:
        claim.validated_at = clock.now
    else:
        claim.rejected_at = clock.now
        claim.rejection_reason = reason
    try:
        await session.flush()
    except StaleDataError as error:
        raise InvalidTransition("The claim changed meanwhile; read it again.") from error
    await _record(session, claim, transition.event, clock, _actor(principal), {"reason": reason})
    return ClaimOut.model_validate(claim)


async def validate_claim(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    claim_id: str,
    if_match: str | None = None,
) -> ClaimOut:
    return await _decide(session, clock, principal, claim_id, ClaimAction.validate, if_match)


async def reject_claim(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    claim_id: str,
    reason: str,
    if_match: str | None = None,
) -> ClaimOut:
    return await _decide(session, clock, principal, claim_id, ClaimAction.reject, if_match, reason)


async def void_attachment_claims(
    session: AsyncSession, clock: Clock, principal: Principal, referral_id: str
) -> None:
    """SES 3.15: backing out a start voids its attachment claim; one already paid is voided
    too, and the next payment run recovers it (domain.md §8)."""
    void = TRANSITIONS[ClaimAction.void]
    statement = select(Claim).where(
        Claim.referral_id == referral_id,
        Claim.claim_type == ClaimType.attachment,
        Claim.status.in_([str(s) for s in void.sources_in_order]),
    )
    for claim in (await session.scalars(statement.with_for_update())).all():
        claim.status = void.target
        claim.voided_at = clock.now
        claim.updated_at = clock.now
        await session.flush()
        await _record(
            session,
            claim,
            void.event,
            clock,
            _actor(principal),
            {"reason": "start backed out"},
        )


async def list_claims(
    session: AsyncSession,
    principal: Principal,
    *,
    status: ClaimStatus | None,
    claim_type: ClaimType | None,
    referral_id: str | None,
    provider_id: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[ClaimOut], str | None]:
    statement = readable_claims(principal)
    if status is not None:
        statement = statement.where(Claim.status == status)
    if claim_type is not None:
        statement = statement.where(Claim.claim_type == claim_type)
    if referral_id is not None:
        statement = statement.where(Claim.referral_id == referral_id)
    if provider_id is not None:
        statement = statement.where(Claim.provider_id == provider_id)
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(Claim.id > after)
    page, next_cursor = await fetch_page(
        session, statement.order_by(Claim.id), limit, lambda c: encode_cursor(c.id)
    )
    return [ClaimOut.model_validate(c) for c in page], next_cursor


async def claim_history(
    session: AsyncSession, principal: Principal, claim_id: str
) -> list[ClaimEventOut]:
    await get_readable_claim(session, principal, claim_id)
    statement = select(ClaimEvent).where(ClaimEvent.claim_id == claim_id).order_by(ClaimEvent.id)
    return [
        ClaimEventOut.model_validate(
            {
                "type": e.type,
                "status": e.status,
                "occurred_at": e.occurred_at,
                "actor": {
                    "sub": e.actor_sub,
                    "role": e.actor_role,
                    "provider_id": e.actor_provider_id,
                },
                **{k: v for k, v in e.data.items() if k in ("reason", "payment_run_id")},
            }
        )
        for e in (await session.scalars(statement)).all()
    ]
