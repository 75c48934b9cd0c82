"""One request pipeline: the single pure-ASGI layer between the server and the app.

Every guarantee the boundary, the unit of work and the request context gave as three
middlewares, each wrapping ``send`` and two of them buffering the body, now in one pass:

1. A request id (``X-Request-ID`` when sane, else minted) bound to every log line.
2. The boundary (``app.core.boundary``; api-contract.md, The boundary): 413 over 1 MiB,
   from ``Content-Length`` or as the body arrives; a write's body read **once**; SCR
   records refused before anything sees them; a stand-in body for anonymous callers and for
   bodies that are not acceptable JSON, reported after 401 and 403.
3. The token verified **once** (``app.core.auth.authenticate``, kept in the scope's state):
   the boundary, the Idempotency-Key's caller and the route's dependency share it.
4. The unit of work (``app.core.unit_of_work``): one transaction, committed in one place
   before the answer leaves; Idempotency-Keys; 503 ``service-unavailable`` with
   ``Retry-After`` and the single retry of a read.
5. The answer sent once, with the headers every response carries (nosniff; no-store on /v1;
   the request id), ``HEAD`` answered as its ``GET`` without the body (RFC 9110 9.3.2:
   FastAPI's routes list only the methods they declare), then the JSON access line and the
   metrics (method, route template, status, duration: never a body, query or header value).
"""

from __future__ import annotations

import time

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.asgi import problem_body, replay_receive
from app.core.auth import principal_of
from app.core.boundary import (
    MAX_BODY_BYTES,
    WRITE_METHODS,
    PayloadTooLarge,
    admit_body,
    declared_length,
    needs_token,
    read_limited,
)
from app.core.observability import added_headers, record_request, request_id_of
from app.core.problems import PROBLEM_CONTENT_TYPE, ProblemError
from app.core.settings import Settings
from app.core.unit_of_work import Answer, IdempotencyGate, UnitOfWork

_PROBLEM_TYPE = (b"content-type", PROBLEM_CONTENT_TYPE.encode())


class RequestPipeline:
    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        idempotency: IdempotencyGate | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.unit_of_work = UnitOfWork(
            app, sessions=sessions, settings=settings, idempotency=idempotency
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = dict(scope, method="GET")  # the request runs as the GET it mirrors
        state = scope.setdefault("state", {})
        request_id = state["request_id"] = request_id_of(scope)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        try:
            answer = await self._answer(scope, receive)
            if isinstance(answer, ProblemError):
                answer = _problem_answer(answer)
            status = answer.status
            headers = [(k, v) for k, v in answer.headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(answer.body)).encode()))
            headers += added_headers(scope["path"], request_id)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            # HEAD: the GET's status and headers (Content-Length too, as the RFC allows).
            await send({"type": "http.response.body", "body": b"" if head else answer.body})
        finally:
            record_request(scope, status, time.perf_counter() - started)
            structlog.contextvars.clear_contextvars()

    async def _answer(self, scope: Scope, receive: Receive) -> Answer | ProblemError:
        length = declared_length(scope)
        if length is not None and length > MAX_BODY_BYTES:
            return PayloadTooLarge()
        if scope["method"] not in WRITE_METHODS:
            # A body sent with a read is never read: no route takes one.
            return await self.unit_of_work(scope, receive, None)
        body = await read_limited(receive, MAX_BODY_BYTES)
        if body is None:
            return PayloadTooLarge()
        anonymous = needs_token(scope["path"]) and principal_of(scope, self.settings) is None
        handed = admit_body(scope["state"], body, anonymous=anonymous)
        if isinstance(handed, ProblemError):
            return handed
        return await self.unit_of_work(scope, replay_receive(handed, receive), body)


def _problem_answer(error: ProblemError) -> Answer:
    headers = [_PROBLEM_TYPE, *((k.lower().encode(), v.encode()) for k, v in error.headers.items())]
    return Answer(error.status, headers, problem_body(error))
