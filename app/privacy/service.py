"""Erasure (GEN 136-137) and subject access (domain.md §10).

``erase_referrals`` is set-based: one statement per table, whatever the number of referrals,
so the same function erases one referral on request and a retention batch of thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import reads_of_all, record_read
from app.claims import service as claims
from app.contracts import service as contracts
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.etags import if_match_allows
from app.core.problems import InvalidTransition, PreconditionFailed
from app.idempotency import service as idempotency
from app.privacy.rules import CODED_REASON_EVENTS, NON_PERSONAL_EVENT_FIELDS
from app.privacy.schemas import ErasureBody, SubjectAccessOut, SubjectAccessReferral
from app.referrals import service as referrals
from app.referrals.digests import NinoDigests
from app.referrals.schemas import ReferralOut
from app.referrals.states import ActorRole, ReferralStatus
from app.webhooks import service as webhooks

Actor = tuple[str, str, str | None]  # sub, role, provider_id
SYSTEM: Actor = ("system", str(ActorRole.system), None)


async def erase_referrals(
    session: AsyncSession,
    referral_ids: Sequence[str],
    *,
    clock: Clock,
    actor: Actor,
    data: dict[str, object],
) -> int:
    """Remove the personal data of these (closed) referrals from the referral, its history
    and the stored idempotent answers that showed it; add one ``erased`` event each. Returns
    how many were erased by this call (one already erased is left alone). Each event keeps
    only its non-personal fields (app.privacy.rules)."""
    ids = list(referral_ids)
    if not ids:
        return 0
    erased, erased_events = await referrals.erase_personal_data(
        session,
        ids,
        clock=clock,
        actor=actor,
        data=data,
        kept_fields=NON_PERSONAL_EVENT_FIELDS,
        coded_reason_events=frozenset(str(t) for t in CODED_REASON_EVENTS),
    )
    # The outbox: a subscriber hears of the erasure (its data is built without the reason's
    # free text), in this same transaction.
    await webhooks.enqueue_for_events(session, erased_events)
    await idempotency.forget_answers_showing(session, ids)
    return erased


def _actor(principal: Principal) -> Actor:
    return (principal.sub, str(principal.role), principal.provider_id)


async def erase_referral(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    referral_id: str,
    body: ErasureBody,
    if_match: str | None,
) -> ReferralOut:
    """GEN 136: erase one closed referral's participant on request (``post``)."""
    referral = await referrals.lock_readable_referral(session, principal, referral_id)
    if if_match is not None and not if_match_allows(if_match, referral.version):
        raise PreconditionFailed()
    if ReferralStatus(referral.status).is_open:
        raise InvalidTransition("Only a closed referral can be erased.")
    if referral.erased_at is not None:
        raise InvalidTransition("The referral is already erased.")
    await erase_referrals(
        session, [referral.id], clock=clock, actor=_actor(principal), data={"reason": body.reason}
    )
    return await referrals.referral_as_it_now_stands(session, clock, principal, referral.id)


async def retention_batch(
    session: AsyncSession, clock: Clock, as_of: date, after: str, batch_size: int
) -> tuple[int, str | None]:
    """JFS 1.33: erase one batch of closed referrals whose contract's Records Retention End
    Date is before ``as_of``. On PostgreSQL the batch is locked ``SKIP LOCKED``, so replicas
    running at once share the work and erase each referral once."""
    contract_ids = await contracts.past_retention(session, as_of)
    ids = await referrals.closed_not_erased(session, contract_ids, after, batch_size)
    if not ids:
        return 0, None
    erased = await erase_referrals(
        session,
        ids,
        clock=clock,
        actor=SYSTEM,
        data={"reason": "retention", "as_of": as_of.isoformat()},
    )
    return erased, ids[-1]


async def subject_access(
    session: AsyncSession, clock: Clock, principal: Principal, digests: NinoDigests, nino: str
) -> SubjectAccessOut:
    """Everything held about one NINO: referrals (erased ones too: the digest still links
    them), their histories, their claims, and who was shown them."""
    found = await referrals.participant_referrals(session, digests, nino)
    ids = [r.id for r in found]
    events = await referrals.events_of_referrals(session, ids)
    reads = await reads_of_all(session, ids)
    items = [
        SubjectAccessReferral(
            **referrals.to_out(r, principal, clock).model_dump(),
            history=[referrals.event_out(e) for e in events if e.referral_id == r.id],
        )
        for r in found
    ]
    await record_read(
        session,
        principal,
        clock,
        "exportSubjectAccess",
        [r.id for r in found if r.erased_at is None],
    )
    return SubjectAccessOut(
        referrals=items, claims=await claims.claims_of_referrals(session, ids), reads=reads
    )


async def rekey_nino_digests(
    sessions: async_sessionmaker[AsyncSession], digests: NinoDigests, *, batch_size: int = 1_000
) -> int:
    """After a rotation of ``PRAP_NINO_DIGEST_KEY``: store every referral that still has its
    NINO under the current key, a committed batch at a time. Erased referrals keep their digest
    (their NINO is gone), so the key they were made with stays in
    ``PRAP_NINO_DIGEST_PREVIOUS_KEYS`` for as long as their rules matter."""
    changed = 0
    after = ""
    while True:
        async with sessions() as session, session.begin():
            rows = await referrals.with_participant_after(session, after, batch_size)
            if not rows:
                return changed
            for row in rows:
                current = digests.current(str(row.participant["nino"]))
                if current != row.nino_digest:
                    await referrals.set_nino_digest(session, row.id, current)
                    changed += 1
            after = rows[-1].id
