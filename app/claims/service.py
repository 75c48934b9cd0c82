"""Claim use cases: submit (provider), validate and reject (post), void on back-out, pay in a
run, read.

Providers see and act on their own provider's claims only (``repository.readable_claims``).
Each change of status follows the claim state table (``app.claims.transitions``) and writes
a claim event in the same transaction. Other features call the public functions here; the
referral and the contract come from their own features' services.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from app.claims import repository, rules
from app.claims.models import Claim
from app.claims.schemas import ClaimCreate, ClaimEventOut, ClaimOut
from app.claims.states import ClaimEventType, ClaimStatus, ClaimType
from app.claims.transitions import INITIAL_STATUS, TRANSITIONS, ClaimAction
from app.contracts import service as contracts
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.etags import if_match_allows
from app.core.ids import new_id
from app.core.problems import (
    DuplicateClaim,
    InvalidTransition,
    PreconditionFailed,
    SegregationOfDuties,
)
from app.programmes.service import programme_params
from app.referrals import service as referrals

Actor = repository.Actor


def _actor(principal: Principal) -> Actor:
    return principal.sub, str(principal.role), principal.provider_id


async def _record(
    session: AsyncSession,
    claim: Claim,
    event_type: ClaimEventType,
    clock: Clock,
    actor: Actor,
    data: dict[str, Any] | None = None,
) -> None:
    await repository.add_event(session, claim, event_type, clock.now, actor, data or {})


async def has_claimed_for(session: AsyncSession, referral_id: str, principal: Principal) -> bool:
    """GEN 122, the other way round: has this person claimed for the referral?"""
    return await repository.claimed_by(session, referral_id, principal.sub, principal.provider_id)


async def create_claim(
    session: AsyncSession, clock: Clock, principal: Principal, body: ClaimCreate
) -> ClaimOut:
    referral = await referrals.lock_readable_referral(session, principal, body.referral_id)
    # GEN 122: whoever recorded the referral's start or end may not claim for it.
    if await referrals.recorded_start_or_end(
        session, referral.id, principal.sub, principal.provider_id
    ):
        raise SegregationOfDuties()
    if await repository.live_claim_exists(session, referral.id, body.claim_type):
        raise DuplicateClaim()
    programme = await programme_params(session, referral.programme)
    contract = await contracts.contract_by_id(session, referral.contract_id)
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
            outcome = await repository.validated_outcome(session, referral.id)
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
    try:
        await repository.add_claim(session, claim)
    except IntegrityError as error:
        # A racing claim of the same type got there first (unique index on live claims).
        raise DuplicateClaim() from error
    await _record(session, claim, ClaimEventType.submitted, clock, _actor(principal))
    return ClaimOut.model_validate(claim)


async def get_readable_claim(
    session: AsyncSession, principal: Principal, claim_id: str, *, for_update: bool = False
) -> Claim:
    return await repository.get_readable(session, principal, claim_id, for_update=for_update)


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
    for claim in await repository.lock_claims_of(
        session, referral_id, ClaimType.attachment, void.sources_in_order
    ):
        claim.status = void.target
        claim.voided_at = clock.now
        claim.updated_at = clock.now
        await session.flush()
        await _record(
            session, claim, void.event, clock, _actor(principal), {"reason": "start backed out"}
        )


@dataclass(frozen=True, slots=True)
class ClaimLine:
    """What a payment run needs of a claim it pays or recovers (domain.md §8)."""

    claim_id: str
    contract_id: str
    provider_id: str
    amount_pence: int


def _line(claim: Claim) -> ClaimLine:
    return ClaimLine(claim.id, claim.contract_id, claim.provider_id, claim.amount_pence)


async def pay_claims(
    session: AsyncSession, clock: Clock, run_id: str, run_created_by: str
) -> list[ClaimLine]:
    """JFS 6.01-6.03: take every claim the state table lets a run pay, for this run, with its
    ``paid`` event; the claims taken, in id order. Set-based, and race-safe by the
    conditional UPDATE (``repository.pay_for_run``)."""
    pay = TRANSITIONS[ClaimAction.pay]
    await repository.pay_for_run(session, pay, run_id, clock.now, run_created_by)
    return [_line(c) for c in await repository.paid_in_run(session, run_id)]


async def voided_after_payment(session: AsyncSession) -> list[ClaimLine]:
    """domain.md §8: paid claims that a back-out voided since (SES 3.15), for a run to
    recover (the run's unique index makes each recovery once)."""
    voided = TRANSITIONS[ClaimAction.void].target
    return [_line(c) for c in await repository.voided_after_payment(session, voided)]


async def claims_of_referrals(session: AsyncSession, referral_ids: Sequence[str]) -> list[ClaimOut]:
    """Every claim of these referrals, whoever made it (subject access, domain.md §10)."""
    return [
        ClaimOut.model_validate(c)
        for c in await repository.claims_of_referrals(session, referral_ids)
    ]


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
    page, next_cursor = await repository.page_of(
        session,
        principal,
        filters={
            "status": status,
            "claim_type": claim_type,
            "referral_id": referral_id,
            "provider_id": provider_id,
        },
        cursor=cursor,
        limit=limit,
    )
    return [ClaimOut.model_validate(c) for c in page], next_cursor


async def claim_history(
    session: AsyncSession, principal: Principal, claim_id: str
) -> list[ClaimEventOut]:
    await repository.get_readable(session, principal, claim_id)
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
        for e in await repository.events_of(session, claim_id)
    ]
