"""Idempotency-Key handling (api-contract.md, Writes).

The same key with the same request from the same caller within 24 hours returns the first
response again without doing anything twice; the same key with a different request is 422
``idempotency-key-reused``; a request while the first is still running is 409
``idempotency-key-in-use``.

The key is reserved in a short transaction of its own, committed before the work starts, so
that other replicas see the reservation. The response is then stored in the request's own
transaction, so the change and its recorded response commit together: a retry never finds a
change without its response. A reservation whose request died (the process was killed) is only
leased: after ``LEASE`` it may be taken over.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import shown_referrals
from app.core.clock import real_now
from app.idempotency import repository
from app.idempotency.models import IdempotencyRecord
from app.idempotency.sealing import seal, unseal

LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255
# Response headers worth replaying; the rest (dates, request ids) belong to the new response.
REPLAYED_HEADERS = ("content-type", "location", "etag")


class ReservationOutcome(enum.Enum):
    reserved = "reserved"
    replay = "replay"
    in_use = "in-use"
    reused = "reused"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class Reservation:
    outcome: ReservationOutcome
    record_id: int | None = None
    response: StoredResponse | None = None
    # For a replay: what the read audit records of it (the answer's operation, and the
    # referrals whose personal data it shows; none when it showed none).
    operation: str | None = None
    shown_referral_ids: tuple[str, ...] = ()


def fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", body):
        digest.update(part)
    return digest.hexdigest()


def is_valid_key(key: str) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()


async def reserve(
    sessions: async_sessionmaker[AsyncSession],
    *,
    caller: str,
    key: str,
    request_fingerprint: str,
    ttl: timedelta,
    secret: str,
) -> Reservation:
    now = real_now()
    async with sessions() as session, session.begin():
        record = await repository.find(session, caller, key)
        if record is not None and record.expires_at <= now:
            await repository.remove(session, record)
            record = None
        if record is None:
            record = IdempotencyRecord(
                caller=caller,
                key=key,
                fingerprint=request_fingerprint,
                state="in_progress",
                created_at=now,
                locked_until=now + LEASE,
                expires_at=now + ttl,
            )
            try:
                await repository.add(session, record)
            except IntegrityError:
                # Another replica reserved the same key a moment ago.
                return Reservation(ReservationOutcome.in_use)
            return Reservation(ReservationOutcome.reserved, record_id=record.id)
        if record.fingerprint != request_fingerprint:
            return Reservation(ReservationOutcome.reused)
        if record.state == "completed" and record.response_status is not None:
            body = unseal(secret, caller, key, record.response_body or "")
            if body is not None:
                return Reservation(
                    ReservationOutcome.replay,
                    response=StoredResponse(
                        status=record.response_status,
                        headers=dict(record.response_headers or {}),
                        body=body,
                    ),
                    operation=record.operation,
                    shown_referral_ids=await repository.shown_referral_ids(session, record.id),
                )
            # Sealed under a secret since rotated: the answer cannot be read back, and the
            # work must not be done twice, so the key stays taken until it expires.
            return Reservation(ReservationOutcome.in_use)
        if record.locked_until > now:
            return Reservation(ReservationOutcome.in_use)
        # The first request died without an answer: its work was rolled back with it.
        record.locked_until = now + LEASE
        return Reservation(ReservationOutcome.reserved, record_id=record.id)


async def complete(
    session: AsyncSession,
    record_id: int,
    response: StoredResponse,
    *,
    secret: str,
    operation: str | None = None,
) -> None:
    """Store the response, sealed, in ``session``'s transaction (the request's own, on
    success), linked to the referrals whose personal data it shows (the ones the request
    recorded as read) and naming the operation that answered."""
    record = await repository.get(session, record_id)
    if record is None:
        return
    record.state = "completed"
    record.operation = operation
    record.response_status = response.status
    record.response_headers = {k: v for k, v in response.headers.items() if k in REPLAYED_HEADERS}
    record.response_body = seal(secret, record.caller, record.key, response.body)
    await session.flush()
    if shown := sorted(shown_referrals(session)):
        await repository.link_referrals(session, record_id, shown)


async def release(sessions: async_sessionmaker[AsyncSession], record_id: int) -> None:
    """Forget a reservation whose request failed unexpectedly, so that a retry may run."""
    async with sessions() as session, session.begin():
        await repository.remove_by_id(session, record_id)


async def purge_expired(session: AsyncSession) -> int:
    return await repository.remove_expired(session, real_now())


# --- for other features ---


async def forget_answers_showing(session: AsyncSession, referral_ids: Sequence[str]) -> None:
    """GEN 136-137: stored answers that showed these referrals' participants go, whoever
    asked (erasure, app.privacy), with the links that said so."""
    await repository.remove_answers_showing(session, referral_ids)
