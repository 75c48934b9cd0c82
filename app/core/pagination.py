"""Keyset pagination: ``limit`` 1-100 (default 50) and an opaque ``cursor``.

Cursors are opaque and tamper-evident (api-contract.md, The boundary): the position is signed
with an HMAC under a key derived from the server secret, so a cursor the service did not issue,
or one changed by hand, is a 422 and never reaches SQL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.problems import FieldError, ValidationProblem

T = TypeVar("T")
R = TypeVar("R")

Limit = Annotated[int, Query(ge=1, le=100, description="Page size, 1 to 100.")]
CursorParam = Annotated[
    str | None,
    Query(
        max_length=200,
        description="`next_cursor` from the previous page. Cursors are opaque and signed: "
        "one the service did not issue, or one changed by hand, is 422 `validation-error`.",
    ),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(description="Cursor for the next page; null on the last.")


async def fetch_page(
    session: AsyncSession,
    statement: Select[R],
    limit: int,
    cursor_of: Callable[[R], str],
) -> tuple[list[R], str | None]:
    """One keyset page: ``statement`` must already be filtered past the cursor and ordered.
    Fetches one row more than asked to know whether another page follows."""
    rows = list((await session.scalars(statement.limit(limit + 1))).all())
    page = rows[:limit]
    return page, cursor_of(page[-1]) if len(rows) > limit else None


_SIGNATURE_BYTES = 16
_INT64 = range(-(2**63), 2**63)
_key: bytes | None = None


def use_cursor_key(key: bytes) -> None:
    """Set the process's cursor key (from settings, when the app is made)."""
    global _key
    _key = key


def _signature(payload: bytes) -> bytes:
    if _key is None:
        raise RuntimeError("no cursor key: create the app from settings first")
    return hmac.new(_key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    raw = base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode())
    if _b64(raw) != text:  # only the one spelling we issue: no slack in the padding bits
        raise ValueError("not a cursor")
    return raw


def encode_cursor(*values: Any) -> str:
    payload = json.dumps(list(values), separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_signature(payload))}"


def decode_cursor(cursor: str, *types: type[Any]) -> tuple[Any, ...]:
    """The values of a cursor made by ``encode_cursor``, checked against ``types``."""
    encoded, _, signature = cursor.partition(".")
    try:
        payload = _unb64(encoded)
        signed = hmac.compare_digest(_unb64(signature), _signature(payload))
        values = json.loads(payload) if signed else None
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise _bad_cursor() from error
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(_is_a(v, t) for v, t in zip(values, types, strict=True))
    ):
        raise _bad_cursor()
    return tuple(values)


def _is_a(value: object, kind: type[Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, kind):
        return False
    return value in _INT64 if isinstance(value, int) else True


def _bad_cursor() -> ValidationProblem:
    return ValidationProblem(
        "The cursor is not one this service issued.",
        errors=[FieldError(field="cursor", message="Invalid cursor.")],
    )
