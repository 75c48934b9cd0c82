"""The API boundary: checks made on the raw request before anything else sees it.

In the contract's order of checks (api-contract.md, Authentication and The boundary):

1. **Size.** A body over 1 MiB is 413, decided from ``Content-Length`` before a byte of the
   body is read and, for a chunked body, as soon as 1 MiB has arrived: the service never holds
   more than that of one request.
2. **Special Customer Records** (domain.md §2; GEN 62-64, FND 21.3, SES 3.30). SCR customers
   "must not have their details held on any electronic systems", so a write whose JSON body
   has a top-level ``"special_customer_record": true`` is answered 422 here, before
   authentication, and none of the body reaches a log line, the database or the idempotency
   store. *Any* such member counts: ``json.loads`` keeps the last of duplicate names, so the
   duplicates are looked at one by one. A body that is not valid JSON is refused too when its
   text matches the contract's pattern, since what its sender meant cannot be known.
3. Everything else about the body (not JSON, nested deeper than 32 levels) is a 422
   ``validation-error`` reported *after* 401 and 403: the body handed on is then a stand-in
   that no schema accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.asgi import header, replay_receive, send_problem
from app.core.problems import ProblemError, SpecialCustomerRecord

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
SCR_MEMBER = "special_customer_record"
# The contract's pattern for a body that is not valid JSON; blanks as JSON defines them.
_SCR_TEXT = re.compile(r'"special_customer_record"[ \t\r\n]*:[ \t\r\n]*true')


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"
    default_detail = "The request body is larger than 1 MiB."


# Stands in for a body that is not acceptable JSON: valid JSON that no request schema accepts,
# so that FastAPI runs authentication before it reports the body (api-contract.md order of
# checks: 401, 403, then 422). The validation handler reports why, from ``body_problem``.
INVALID_JSON_STAND_IN = b'"invalid JSON body"'
NOT_JSON = "The body is not valid JSON."
TOO_DEEP = f"The body is nested deeper than {MAX_JSON_DEPTH} levels."


class _Members(dict[str, Any]):
    """A decoded JSON object that remembers whether any of its members, duplicates
    included, was ``"special_customer_record": true``."""

    __slots__ = ("says_scr",)

    says_scr: bool


def _object(pairs: list[tuple[str, Any]]) -> _Members:
    members = _Members(pairs)
    members.says_scr = any(name == SCR_MEMBER and value is True for name, value in pairs)
    return members


def _no_constant(name: str) -> None:
    # NaN and Infinity are not JSON (RFC 8259); nothing downstream should meet them.
    raise ValueError(name)


def _depth_exceeds(document: object, limit: int) -> bool:
    """Whether ``document`` nests arrays and objects deeper than ``limit`` (iteratively, so a
    deep document cannot exhaust the stack here)."""
    stack: list[tuple[object, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def inspect(body: bytes) -> tuple[bool, str | None]:
    """``(is_scr, problem)`` for a write's body: whether it is an SCR record, and otherwise
    what is wrong with it as JSON (None when nothing is)."""
    if not body.strip():
        return False, None
    try:
        document = json.loads(body, object_pairs_hook=_object, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _text_says_scr(body), NOT_JSON
    if isinstance(document, _Members) and document.says_scr:
        return True, None
    if _depth_exceeds(document, MAX_JSON_DEPTH):
        return False, TOO_DEEP
    return False, None


def _text_says_scr(body: bytes) -> bool:
    try:
        encoding = json.detect_encoding(body)
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return _SCR_TEXT.search(text) is not None


def declared_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


async def read_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as more than ``limit`` bytes have arrived (the rest
    is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
        elif message["type"] == "http.disconnect":
            return b"".join(chunks)


class BoundaryMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > MAX_BODY_BYTES:
            await send_problem(send, PayloadTooLarge())
            return
        if scope["method"] not in WRITE_METHODS:
            # A body sent with a read is never read: no route takes one.
            await self.app(scope, receive, send)
            return
        body = await read_limited(receive, MAX_BODY_BYTES)
        if body is None:
            await send_problem(send, PayloadTooLarge())
            return
        is_scr, problem = inspect(body)
        if is_scr:
            await send_problem(send, SpecialCustomerRecord())
            return
        state = scope.setdefault("state", {})
        state["raw_body"] = body
        if problem is not None:
            state["body_problem"] = problem
            body = INVALID_JSON_STAND_IN
        await self.app(scope, replay_receive(body, receive), send)
