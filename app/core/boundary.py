"""The API boundary: checks made on the raw request before anything else sees it (by the
request pipeline, ``app.core.pipeline``).

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

from starlette.types import Receive, Scope

from app.core.asgi import header
from app.core.problems import ProblemError, SpecialCustomerRecord

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
SCR_MEMBER = "special_customer_record"
# The contract's pattern for a body that is not valid JSON; blanks as JSON defines them.
_SCR_TEXT = re.compile(r'"special_customer_record"[ \t\r\n]*:[ \t\r\n]*true')
_SCR_BYTES = re.compile(_SCR_TEXT.pattern.encode())


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


# The boundary reads a body as a *skeleton*: numbers become None and every object collapses,
# as soon as it is read, to one int: its nesting depth, negative when one of its members
# (duplicates included) is ``"special_customer_record": true``. So it learns the SCR verdict,
# the depth and whether the body is JSON in one pass of the C parser, holding little more
# than the body itself: a 1 MiB body of ``[{},{},...]`` would otherwise be 25-50 MB of dicts.
# Real JSON numbers never reach the skeleton, so an int there is always a depth.


def _nothing(_text: str) -> None:
    return None


def _no_constant(name: str) -> None:
    # NaN and Infinity are not JSON (RFC 8259); nothing downstream should meet them.
    raise ValueError(name)


def _depth(value: object) -> int:
    """The nesting depth of a skeleton value (iteratively: no stack to exhaust here)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value)
    if not isinstance(value, list):
        return 0
    deepest = 0
    stack: list[tuple[list[Any], int]] = [(value, 1)]
    while stack:
        items, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break  # deep enough to refuse; no need to know how deep
        for item in items:
            if isinstance(item, list):
                stack.append((item, depth + 1))
            elif isinstance(item, int) and not isinstance(item, bool):
                deepest = max(deepest, depth + abs(item))
    return deepest


def _object(pairs: list[tuple[str, Any]]) -> int:
    depth = 1 + max((_depth(value) for _, value in pairs), default=0)
    says_scr = any(name == SCR_MEMBER and value is True for name, value in pairs)
    return -depth if says_scr else depth


def inspect(body: bytes) -> tuple[bool, str | None]:
    """``(is_scr, problem)`` for a write's body: whether it is an SCR record, and otherwise
    what is wrong with it as JSON (None when nothing is)."""
    if not body.strip():
        return False, None
    try:
        skeleton = json.loads(
            body,
            object_pairs_hook=_object,
            parse_int=_nothing,
            parse_float=_nothing,
            parse_constant=_no_constant,
        )
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _text_says_scr(body), NOT_JSON
    if isinstance(skeleton, int) and not isinstance(skeleton, bool) and skeleton < 0:
        return True, None
    if _depth(skeleton) > MAX_JSON_DEPTH:
        return False, TOO_DEEP
    return False, None


def _text_says_scr(body: bytes) -> bool:
    try:
        encoding = json.detect_encoding(body)
        text = body.decode(encoding, errors="replace")
    except LookupError:
        text = body.decode("utf-8", errors="replace")
    return _SCR_TEXT.search(text) is not None


def might_say_scr(body: bytes) -> bool:
    """False only when no reading of ``body`` could have a member
    ``"special_customer_record": true``: UTF-8 with neither the pattern nor a backslash (a
    name can be spelt with escapes). A fast C search, so the bodies of callers who will be
    answered 401 need not be parsed at all."""
    if json.detect_encoding(body) != "utf-8":
        return True
    return b"\\" in body or _SCR_BYTES.search(body) is not None


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


# Routes that take no token (api-contract.md, Sandbox): everywhere else under /v1 a caller
# without a valid token is answered 401 whatever its body says.
_TOKENLESS = "/v1/sandbox/"


def needs_token(path: str) -> bool:
    return path.startswith("/v1/") and not path.startswith(_TOKENLESS)


def admit_body(state: dict[str, Any], body: bytes, *, anonymous: bool) -> bytes | ProblemError:
    """The body to hand the app for a write's ``body`` (read whole, within the cap), or the
    problem to answer instead (an SCR record). ``anonymous``: the route will answer 401."""
    if anonymous and not might_say_scr(body):
        is_scr, problem = False, None  # and the body is never decoded: see below
    else:
        is_scr, problem = inspect(body)
    if is_scr:
        return SpecialCustomerRecord()
    if anonymous:
        # The route answers 401 before it looks at the body, so the body need not be
        # decoded into objects at all: an unauthenticated caller costs at most its 1 MiB.
        return INVALID_JSON_STAND_IN
    state["raw_body"] = body
    if problem is not None:
        state["body_problem"] = problem
        return INVALID_JSON_STAND_IN
    return body
