"""Keyset pagination: ``limit`` 1-100 (default 50) and an opaque ``cursor``."""

from __future__ import annotations

import base64
import binascii
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
    Query(max_length=200, description="`next_cursor` from the previous page."),
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


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type[Any]) -> tuple[Any, ...]:
    """The values of a cursor made by ``encode_cursor``, checked against ``types``."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise _bad_cursor() from error
    if (
        not isinstance(values, list)
        or len(values) != len(types)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, types, strict=True)
        )
    ):
        raise _bad_cursor()
    return tuple(values)


def _bad_cursor() -> ValidationProblem:
    return ValidationProblem(
        "The cursor is not one this service issued.",
        errors=[FieldError(field="cursor", message="Invalid cursor.")],
    )
