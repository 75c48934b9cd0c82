"""Query shapes every repository repeats: one readable row or 404, and a page by id.

Repositories pass their own tenancy-filtered statement in (``readable_*``), so the filter
stays in the feature's repository; these only finish the statement.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from app.core.auth import Principal
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.core.problems import NotFound

R = TypeVar("R")


def visible_to(statement: Select[R], provider_column: Any, principal: Principal) -> Select[R]:
    """Tenancy (domain.md §1): a provider sees only its own rows; JCP, POST and admin see all."""
    if principal.is_provider:
        statement = statement.where(provider_column == principal.provider_id)
    return statement


async def one_or_not_found(
    session: AsyncSession, statement: Select[R], message: str, *, for_update: bool = False
) -> R:
    """The one row, or 404 ``not-found`` (the same for one the caller may not see, §1)."""
    if for_update:
        statement = statement.with_for_update()
    row = (await session.scalars(statement)).one_or_none()
    if row is None:
        raise NotFound(message)
    return row


def where_equal(statement: Select[R], model: Any, filters: dict[str, Any]) -> Select[R]:
    """Each filter given (not None) as ``column = value``."""
    for column, value in filters.items():
        if value is not None:
            statement = statement.where(getattr(model, column) == value)
    return statement


async def page_by_id(
    session: AsyncSession,
    statement: Select[R],
    id_column: InstrumentedAttribute[str],
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[R], str | None]:
    """Rows in id order after the cursor's id, a page at a time (keyset pagination)."""
    if cursor is not None:
        (after,) = decode_cursor(cursor, str)
        statement = statement.where(id_column > after)
    return await fetch_page(
        session,
        statement.order_by(id_column),
        limit,
        lambda row: encode_cursor(getattr(row, id_column.key)),
    )
