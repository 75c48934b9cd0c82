"""The idempotency store as the unit of work sees it (``app.core.unit_of_work.IdempotencyGate``),
wired in by ``app.main``: core imports no feature, so the feature fills core's protocol.

A replay is answered from the store, outside the services, yet it shows the participant
again: GEN 71's control sheet records every showing, so the replay is recorded here as a read
(``app.audit.service.record_read``, the same who, when, which and operation as the first
answer's), in a transaction of the replay's own. An answer that showed no personal data (a
refusal, a contract) is linked to no referral and records nothing.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import record_read
from app.core.auth import Principal
from app.core.deps import ClockReader, real_clock
from app.core.problems import IdempotencyKeyInUse, IdempotencyKeyReused, ProblemError
from app.core.settings import Settings
from app.core.unit_of_work import Answer
from app.idempotency import service
from app.idempotency.service import Reservation, ReservationOutcome, StoredResponse

_REPLAYED = (b"idempotent-replayed", b"true")
# Answers stored before migration 0008 named no operation; their replays are still recorded.
UNRECORDED_OPERATION = "unrecorded"


class IdempotencyKeys:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        read_clock: ClockReader = real_clock,
    ) -> None:
        self.sessions = sessions
        self.read_clock = read_clock
        self.ttl = timedelta(hours=settings.idempotency_ttl_hours)
        # Start-up refuses to run without one (Settings.missing_keys).
        self.secret = settings.idempotency_secret or ""

    def is_valid_key(self, key: str) -> bool:
        return service.is_valid_key(key)

    async def reserve(
        self, principal: Principal, key: str, *, method: str, path: str, body: bytes
    ) -> int | Answer | ProblemError:
        reservation = await service.reserve(
            self.sessions,
            caller=principal.caller_key,
            key=key,
            request_fingerprint=service.fingerprint(method, path, body),
            ttl=self.ttl,
            secret=self.secret,
        )
        if reservation.outcome is ReservationOutcome.replay and reservation.response is not None:
            if reservation.shown_referral_ids:
                await self._record_replayed_read(principal, reservation)
            stored = reservation.response
            headers = [(k.encode(), v.encode()) for k, v in stored.headers.items()]
            return Answer(stored.status, [*headers, _REPLAYED], stored.body)
        if reservation.outcome is ReservationOutcome.reused:
            return IdempotencyKeyReused()
        if reservation.outcome is ReservationOutcome.reserved and reservation.record_id is not None:
            return reservation.record_id
        return IdempotencyKeyInUse()

    async def complete(
        self, session: AsyncSession, record_id: int, answer: Answer, *, operation: str | None
    ) -> None:
        await service.complete(
            session, record_id, _stored(answer), secret=self.secret, operation=operation
        )

    async def _record_replayed_read(self, principal: Principal, replay: Reservation) -> None:
        async with self.sessions() as session, session.begin():
            clock = await self.read_clock(session)
            await record_read(
                session,
                principal,
                clock,
                replay.operation or UNRECORDED_OPERATION,
                replay.shown_referral_ids,
            )

    async def settle_failure(self, record_id: int, answer: Answer) -> None:
        # A refusal (4xx) changed nothing and would be refused again: remember it, so a retry
        # gets the same answer. A server error is forgotten so that a retry may succeed.
        if answer.status < 500:
            async with self.sessions() as session, session.begin():
                await service.complete(session, record_id, _stored(answer), secret=self.secret)
        else:
            await self.release(record_id)

    async def release(self, record_id: int) -> None:
        await service.release(self.sessions, record_id)


def _stored(answer: Answer) -> StoredResponse:
    return StoredResponse(
        status=answer.status,
        headers={k.decode().lower(): v.decode() for k, v in answer.headers},
        body=answer.body,
    )
