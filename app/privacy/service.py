"""Erasure (GEN 136-137) and subject access (domain.md §10).

``erase_referrals`` is set-based: one statement per table, whatever the number of referrals,
so the same function erases one referral on request and a retention batch of thousands.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from datetime import date

from sqlalchemy import String, Table, bindparam, delete, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import reads_of_all, record_read
from app.claims.models import Claim
from app.claims.schemas import ClaimOut
from app.contracts.models import Contract
from app.core.auth import Principal
from app.core.clock import Clock
from app.core.etags import if_match_allows
from app.core.problems import InvalidTransition, PreconditionFailed
from app.idempotency.models import IdempotencyRecord, IdempotencyReferral
from app.privacy.rules import CODED_REASON_EVENTS, NON_PERSONAL_EVENT_FIELDS
from app.privacy.schemas import ErasureBody, SubjectAccessOut, SubjectAccessReferral
from app.referrals.digests import NinoDigests
from app.referrals.models import EVENT_COLUMNS, Referral, ReferralEvent
from app.referrals.repository import get_readable, transaction_id
from app.referrals.schemas import ReferralOut
from app.referrals.service import event_out, to_out
from app.referrals.states import TERMINAL_STATES, ActorRole, EventType, ReferralStatus
from app.webhooks import service as webhooks

Actor = tuple[str, str, str | None]  # sub, role, provider_id
SYSTEM: Actor = ("system", str(ActorRole.system), None)


def _quoted(values: typing.Iterable[str]) -> str:
    # Constants of this module only, never input.
    return ", ".join(f"'{v}'" for v in sorted(values))


# Each event keeps only its non-personal fields (app.privacy.rules). json_each and an
# aggregate exist on both databases, under these names.
_SCRUB_EVENTS = """
UPDATE referral_events SET data = COALESCE((
    SELECT {aggregate}(f.key, f.value) FROM json_each(referral_events.data) AS f
    WHERE f.key IN ({kept})
       OR (f.key = 'reason' AND referral_events.type IN ({coded}))
), {empty})
WHERE referral_id IN :ids
"""


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
    how many were erased by this call (one already erased is left alone)."""
    ids = list(referral_ids)
    if not ids:
        return 0
    dialect = session.get_bind().dialect.name
    postgres = dialect == "postgresql"
    scrub = _SCRUB_EVENTS.format(
        aggregate="json_object_agg" if postgres else "json_group_object",
        empty="CAST('{}' AS json)" if postgres else "json('{}')",
        kept=_quoted(NON_PERSONAL_EVENT_FIELDS),
        coded=_quoted(str(t) for t in CODED_REASON_EVENTS),
    )
    await session.execute(text(scrub).bindparams(bindparam("ids", expanding=True)), {"ids": ids})
    pending = (Referral.id.in_(ids), Referral.erased_at.is_(None))
    newly_erased = list((await session.scalars(select(Referral.id).where(*pending))).all())
    await session.execute(
        insert(typing.cast(Table, ReferralEvent.__table__)).from_select(
            EVENT_COLUMNS,
            select(
                transaction_id(dialect),
                Referral.id,
                Referral.provider_id,
                literal(str(EventType.erased), String),
                literal(clock.now, ReferralEvent.occurred_at.type),
                literal(actor[0], String),
                literal(actor[1], String),
                literal(actor[2], String),
                Referral.version + 1,
                Referral.status,
                literal(data, ReferralEvent.data.type),
            )
            .where(*pending)
            .order_by(Referral.id),
        )
    )
    # The outbox: a subscriber hears of the erasure (its data is built without the reason's
    # free text), in this same transaction.
    await webhooks.enqueue_for_events(
        session,
        select(ReferralEvent.id).where(
            ReferralEvent.referral_id.in_(newly_erased),
            ReferralEvent.type == str(EventType.erased),
        ),
    )
    result = await session.execute(
        update(Referral)
        .where(*pending)
        .values(
            participant=None,
            markers=None,
            details=None,
            mappa=None,
            erased_at=clock.now,
            updated_at=clock.now,
            version=Referral.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    # Stored answers that showed these participants go, whoever asked.
    shown = select(IdempotencyReferral.record_id).where(IdempotencyReferral.referral_id.in_(ids))
    await session.execute(
        delete(IdempotencyRecord)
        .where(IdempotencyRecord.id.in_(shown))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        delete(IdempotencyReferral)
        .where(IdempotencyReferral.referral_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


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
    referral = await get_readable(session, principal, referral_id, for_update=True)
    if if_match is not None and not if_match_allows(if_match, referral.version):
        raise PreconditionFailed()
    if ReferralStatus(referral.status).is_open:
        raise InvalidTransition("Only a closed referral can be erased.")
    if referral.erased_at is not None:
        raise InvalidTransition("The referral is already erased.")
    await erase_referrals(
        session, [referral.id], clock=clock, actor=_actor(principal), data={"reason": body.reason}
    )
    await session.refresh(referral)
    return to_out(referral, principal, clock)


async def retention_batch(
    session: AsyncSession, clock: Clock, as_of: date, after: str, batch_size: int
) -> tuple[int, str | None]:
    """JFS 1.33: erase one batch of closed referrals whose contract's Records Retention End
    Date is before ``as_of``. On PostgreSQL the batch is locked ``SKIP LOCKED``, so replicas
    running at once share the work and erase each referral once."""
    statement = (
        select(Referral.id)
        .join(Contract, Contract.id == Referral.contract_id)
        .where(
            Contract.records_retention_end_date < as_of,
            Referral.status.in_([str(s) for s in TERMINAL_STATES]),
            Referral.erased_at.is_(None),
            Referral.id > after,
        )
        .order_by(Referral.id)
        .limit(batch_size)
    )
    if session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(of=Referral, skip_locked=True)
    ids = list((await session.scalars(statement)).all())
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
    referrals = list(
        (
            await session.scalars(
                select(Referral)
                .where(Referral.nino_digest.in_(digests.every(nino)))
                .order_by(Referral.id)
            )
        ).all()
    )
    ids = [r.id for r in referrals]
    events = (
        await session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id.in_(ids))
            .order_by(ReferralEvent.referral_id, ReferralEvent.id)
        )
    ).all()
    claims = (
        await session.scalars(select(Claim).where(Claim.referral_id.in_(ids)).order_by(Claim.id))
    ).all()
    reads = await reads_of_all(session, ids)
    items = [
        SubjectAccessReferral(
            **to_out(r, principal, clock).model_dump(),
            history=[event_out(e) for e in events if e.referral_id == r.id],
        )
        for r in referrals
    ]
    await record_read(
        session,
        principal,
        clock,
        "exportSubjectAccess",
        [r.id for r in referrals if r.erased_at is None],
    )
    return SubjectAccessOut(
        referrals=items, claims=[ClaimOut.model_validate(c) for c in claims], reads=reads
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
            rows = (
                await session.execute(
                    select(Referral.id, Referral.nino_digest, Referral.participant)
                    .where(Referral.id > after, Referral.participant.is_not(None))
                    .order_by(Referral.id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                return changed
            for row in rows:
                current = digests.current(str(row.participant["nino"]))
                if current != row.nino_digest:
                    await session.execute(
                        update(Referral)
                        .where(Referral.id == row.id)
                        .values(nino_digest=current)
                        .execution_options(synchronize_session=False)
                    )
                    changed += 1
            after = rows[-1].id
