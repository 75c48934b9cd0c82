"""One transaction per request, committed in one place, before the response leaves.

The unit of work (run by the request pipeline, ``app.core.pipeline``) gives each request an
``AsyncSession`` (it connects only when first used). When the app has produced its response,
a success (< 400) is committed and anything else rolled back; only then is the response sent,
so a client never sees 2xx for a change that did not commit. Idempotency-Keys are handled
here too, because the stored response must commit in the same transaction as the change it
answers for; the store itself is the idempotency feature's, reached through
``IdempotencyGate``, which ``app.main`` fills (core imports no feature).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope

from app.core.asgi import header
from app.core.auth import Principal, principal_of
from app.core.database import database_unavailable
from app.core.problems import ProblemError, ServiceUnavailable
from app.core.settings import Settings

logger = logging.getLogger("prap.uow")

# Reads are retried once when they met a connection the database had dropped (a restart):
# the pool has discarded it by then, so the retry runs on a fresh one.
RETRIED_METHODS = frozenset({"GET", "HEAD"})
COMMIT_UNKNOWN = (
    "The database connection was lost while committing, so the change may or may not have "
    "been made. Retry with the same Idempotency-Key to find out safely."
)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as the app produced it, held whole until its transaction has settled."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class IdempotencyGate(Protocol):
    """What the unit of work needs of the store of Idempotency-Keys (api-contract.md, Writes)."""

    def is_valid_key(self, key: str) -> bool: ...

    async def reserve(
        self, principal: Principal, key: str, *, method: str, path: str, body: bytes
    ) -> int | Answer | ProblemError:
        """Reserve ``key`` for this request in a short transaction of its own: the record's id
        to run the request under, or what to answer instead (a replay, or a refusal)."""
        ...

    async def complete(
        self, session: AsyncSession, record_id: int, answer: Answer, *, operation: str | None
    ) -> None:
        """Store a success's answer in the request's own transaction, before it commits."""
        ...

    async def settle_failure(self, record_id: int, answer: Answer) -> None:
        """Settle the reservation of a request answered >= 400 (its transaction rolled back)."""
        ...

    async def release(self, record_id: int) -> None:
        """Forget the reservation of a request that failed unexpectedly."""
        ...


class _Unavailable(Exception):
    """The database could not be reached; carries what to tell the client."""

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail


def operation_of(scope: Scope) -> str | None:
    """The operation id of the route that answered (FastAPI puts the route in the scope)."""
    operation: str | None = getattr(scope.get("route"), "operation_id", None)
    return operation


async def get_session(request: Request) -> AsyncSession:
    """The request's session (FastAPI dependency; async, so it never costs a thread hop)."""
    session: AsyncSession = request.state.db
    return session


class UnitOfWork:
    """Runs one request in one transaction, with its Idempotency-Key; called by the request
    pipeline (``app.core.pipeline``) with the body already read, and answering an ``Answer``
    the pipeline sends."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        idempotency: IdempotencyGate | None = None,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.settings = settings
        self.idempotency = idempotency

    async def __call__(
        self, scope: Scope, receive: Receive, sent: bytes | None
    ) -> Answer | ProblemError:
        """``sent``: a write's body as the client sent it (the key's fingerprint is of it,
        whatever the boundary handed the app), None for a read."""
        record_id: int | None = None
        gate = self.idempotency
        if (
            gate is not None
            and sent is not None
            and scope["method"] == "POST"
            and (key := header(scope, b"idempotency-key")) is not None
            # Without a valid token the app answers 401, and nothing is recorded.
            and (principal := principal_of(scope, self.settings)) is not None
        ):
            if not gate.is_valid_key(key):
                # Reported after the route's role and scope checks (``require``), as the
                # order of checks wants: 401, 403, then 422.
                scope["state"]["invalid_idempotency_key"] = True
            else:
                try:
                    reserved = await gate.reserve(
                        principal, key, method=scope["method"], path=scope["path"], body=sent
                    )
                except Exception as error:
                    if not database_unavailable(error):
                        raise
                    return _unavailable(error)
                if isinstance(reserved, Answer | ProblemError):
                    return reserved
                record_id = reserved
        return await self._run(scope, receive, record_id)

    async def _run(
        self, scope: Scope, receive: Receive, record_id: int | None
    ) -> Answer | ProblemError:
        retries = 1 if scope["method"] in RETRIED_METHODS else 0
        while True:
            try:
                return await self._attempt(scope, receive, record_id)
            except _Unavailable as unavailable:
                error = unavailable.__cause__ or unavailable
                if retries and unavailable.detail is None:
                    retries -= 1
                    logger.info("retrying a read on a fresh connection")
                    continue
                if record_id is not None:
                    await self._release_quietly(record_id)
                return _unavailable(error, unavailable.detail)

    async def _attempt(self, scope: Scope, receive: Receive, record_id: int | None) -> Answer:
        """Run the app in one transaction; the response, once it has committed (or rolled
        back, for a refusal). Raises ``_Unavailable`` when the database could not be reached."""
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        async with self.sessions() as session:
            scope["state"]["db"] = session
            try:
                await self.app(scope, receive, capture)
            except BaseException as error:
                if isinstance(error, Exception) and database_unavailable(error):
                    await session.invalidate()
                    raise _Unavailable() from error
                await session.rollback()
                if record_id is not None:
                    await self._gate.release(record_id)
                raise
            assert start is not None, "the app sent no response"
            answer = Answer(start["status"], list(start.get("headers", [])), b"".join(chunks))
            try:
                if answer.status < 400:
                    if record_id is not None:
                        await self._gate.complete(
                            session, record_id, answer, operation=operation_of(scope)
                        )
                    await session.commit()
                else:
                    await session.rollback()
                    if record_id is not None:
                        await self._gate.settle_failure(record_id, answer)
            except Exception as error:
                if database_unavailable(error):
                    await session.invalidate()
                    # A lost COMMIT leaves the outcome unknown; a read changed nothing.
                    detail = COMMIT_UNKNOWN if scope["method"] not in RETRIED_METHODS else None
                    raise _Unavailable(detail) from error
                logger.exception("commit failed")
                await session.rollback()
                if record_id is not None:
                    await self._gate.release(record_id)
                raise
        return answer

    async def _release_quietly(self, record_id: int) -> None:
        """Free the key for a retry; while the database is down this cannot happen, and the
        key's lease lets a retry take it over later."""
        try:
            await self._gate.release(record_id)
        except Exception as error:
            if not database_unavailable(error):
                raise

    @property
    def _gate(self) -> IdempotencyGate:
        # Only called with a record id, which only a gate hands out.
        assert self.idempotency is not None
        return self.idempotency


def _unavailable(error: BaseException, detail: str | None = None) -> ServiceUnavailable:
    # Expected while the database restarts: one line, no traceback (the pool has
    # discarded the broken connections and recovers by itself).
    logger.warning("database unavailable (%s): answered 503", type(error).__name__)
    return ServiceUnavailable(detail)
