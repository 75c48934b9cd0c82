"""Webhook queries. Every read of a subscription starts from ``readable_subscriptions``:
a provider sees its own only, and another's answers 404 exactly like one that does not
exist (domain.md §1)."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Insert,
    Select,
    Subquery,
    Table,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.core.auth import Principal
from app.core.pagination import decode_cursor, encode_cursor, fetch_page
from app.core.queries import one_or_not_found
from app.webhooks.models import WebhookDelivery, WebhookSubscription
from app.webhooks.states import DeliveryStatus

# A column, or a literal, holding an event type.
TypeExpr = ColumnElement[Any] | InstrumentedAttribute[str]


def readable_subscriptions(principal: Principal) -> Select[WebhookSubscription]:
    return select(WebhookSubscription).where(
        WebhookSubscription.provider_id == principal.provider_id
    )


async def get_readable_subscription(
    session: AsyncSession, principal: Principal, subscription_id: str
) -> WebhookSubscription:
    statement = readable_subscriptions(principal).where(WebhookSubscription.id == subscription_id)
    return await one_or_not_found(session, statement, "No such webhook subscription.")


async def count_subscriptions(session: AsyncSession, provider_id: str | None) -> int:
    rows = await session.scalars(
        select(WebhookSubscription.id).where(WebhookSubscription.provider_id == provider_id)
    )
    return len(rows.all())


def subscribed_to(event_type: TypeExpr) -> ColumnElement[bool]:
    """The subscription takes events of this type: all types (null), or the type is in its
    delimited list. One SQL expression for both the requests' and the jobs' outbox writes.
    ``_`` is a LIKE wildcard, and event types have underscores: escape them."""
    pattern = literal("%,") + _escape_underscores(event_type) + literal(",%")
    return or_(
        WebhookSubscription.event_types.is_(None),
        WebhookSubscription.event_types.like(pattern, escape="\\"),
    )


def _escape_underscores(value: TypeExpr) -> ColumnElement[str]:
    return func.replace(value, "_", "\\_")


async def subscriptions_for(session: AsyncSession, provider_id: str, event_type: str) -> list[str]:
    statement = select(WebhookSubscription.id).where(
        WebhookSubscription.provider_id == provider_id, subscribed_to(literal(event_type))
    )
    return list((await session.scalars(statement)).all())


def deliveries_insert(announced: Subquery) -> Insert:
    """One INSERT ... SELECT: a pending delivery per (event, matching subscription of the
    event's provider), in event order, due at once (the event's own time). ``announced`` is
    the referrals feature's view of the events (``referrals.service.announced_events``)."""
    pending = str(DeliveryStatus.pending)
    event = announced.c
    source = (
        select(
            WebhookSubscription.id,
            event.event_id,
            event.referral_id,
            event.type,
            literal(pending),
            literal(0),
            event.occurred_at,
            event.occurred_at,
        )
        .select_from(announced)
        .join(
            WebhookSubscription,
            and_(
                WebhookSubscription.provider_id == event.provider_id,
                subscribed_to(event.type),
            ),
        )
        .order_by(event.event_id, WebhookSubscription.id)
    )
    return insert(typing.cast(Table, WebhookDelivery.__table__)).from_select(
        [
            "subscription_id",
            "event_id",
            "referral_id",
            "event_type",
            "status",
            "attempts",
            "created_at",
            "next_attempt_at",
        ],
        source,
    )


async def insert_deliveries(session: AsyncSession, statement: Insert) -> None:
    """Run the outbox's INSERT ... SELECT for events written set-based (the jobs, erasure);
    an action's own event announces itself in the statement that writes it."""
    await session.execute(statement)


def no_earlier_pending() -> ColumnElement[bool]:
    """Ordering per referral: nothing earlier for the same subscription and referral is
    still pending (in flight or waiting for its retry)."""
    earlier = aliased(WebhookDelivery)
    return ~exists().where(
        earlier.subscription_id == WebhookDelivery.subscription_id,
        earlier.referral_id == WebhookDelivery.referral_id,
        earlier.status == str(DeliveryStatus.pending),
        earlier.event_id < WebhookDelivery.event_id,
    )


def deliveries_of(subscription_id: str) -> Select[WebhookDelivery]:
    return select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)


async def delivery_of(
    session: AsyncSession, subscription_id: str, delivery_id: int
) -> WebhookDelivery:
    statement = deliveries_of(subscription_id).where(WebhookDelivery.id == delivery_id)
    return await one_or_not_found(session, statement, "No such delivery.", for_update=True)


def add_delivery(session: AsyncSession, delivery: WebhookDelivery) -> None:
    """Added to the session: the caller's flush writes it with the event's change."""
    session.add(delivery)


async def add_subscription(session: AsyncSession, subscription: WebhookSubscription) -> None:
    session.add(subscription)
    await session.flush()


async def subscriptions_of(
    session: AsyncSession, principal: Principal
) -> list[WebhookSubscription]:
    statement = readable_subscriptions(principal).order_by(WebhookSubscription.id)
    return list((await session.scalars(statement)).all())


async def delete_subscription(session: AsyncSession, subscription: WebhookSubscription) -> None:
    """Its deliveries go with it."""
    await session.execute(
        delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription.id)
    )
    await session.delete(subscription)
    await session.flush()


async def page_of_deliveries(
    session: AsyncSession, subscription_id: str, *, cursor: str | None, limit: int
) -> tuple[list[WebhookDelivery], str | None]:
    """Newest first."""
    statement = deliveries_of(subscription_id)
    if cursor is not None:
        (before,) = decode_cursor(cursor, int)
        statement = statement.where(WebhookDelivery.id < before)
    return await fetch_page(
        session,
        statement.order_by(WebhookDelivery.id.desc()),
        limit,
        lambda d: encode_cursor(d.id),
    )


# --- the delivery worker ---------------------------------------------------------------------


async def due_candidates(
    session: AsyncSession,
    *,
    due_by: datetime,
    now: datetime,
    saturated: list[str],
    limit: int,
) -> list[tuple[WebhookDelivery, str, str]]:
    """Pending deliveries due by the service clock, not leased (real time), with nothing
    earlier pending for their referral, and not of a subscription whose slots are all busy
    (so a backlog of one never fills the candidates), oldest due first, with their
    subscription's URL and secret. On PostgreSQL ``FOR UPDATE SKIP LOCKED``."""
    statement = (
        select(WebhookDelivery, WebhookSubscription.url, WebhookSubscription.secret)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == str(DeliveryStatus.pending),
            WebhookDelivery.next_attempt_at <= due_by,
            or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
            no_earlier_pending(),
            WebhookDelivery.subscription_id.not_in(saturated),
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(of=WebhookDelivery, skip_locked=True)
    )
    return [(d, url, secret) for d, url, secret in await session.execute(statement)]


async def lease(session: AsyncSession, ids: list[int], *, until: datetime, token: str) -> None:
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(ids))
        .values(lease_until=until, lease_token=token)
        .execution_options(synchronize_session=False)
    )


async def record_attempt(
    session: AsyncSession, delivery_id: int, lease_token: str, values: dict[str, object]
) -> None:
    """Store an attempt's outcome only while the lease is still this worker's."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.lease_token == lease_token)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
