"""Webhook queries. Every read of a subscription starts from ``readable_subscriptions``:
a provider sees its own only, and another's answers 404 exactly like one that does not
exist (domain.md §1)."""

from __future__ import annotations

import typing
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.core.auth import Principal
from app.core.problems import NotFound
from app.referrals.models import ReferralEvent
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
    subscription = (await session.scalars(statement)).one_or_none()
    if subscription is None:
        raise NotFound("No such webhook subscription.")
    return subscription


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


async def insert_deliveries_for(session: AsyncSession, events: Select[int]) -> None:
    """One INSERT ... SELECT: a pending delivery per (event, matching subscription of the
    event's provider), in event order, due at once (the event's own time)."""
    pending = str(DeliveryStatus.pending)
    source = (
        select(
            WebhookSubscription.id,
            ReferralEvent.id,
            ReferralEvent.referral_id,
            ReferralEvent.type,
            literal(pending),
            literal(0),
            ReferralEvent.occurred_at,
            ReferralEvent.occurred_at,
        )
        .join(
            WebhookSubscription,
            and_(
                WebhookSubscription.provider_id == ReferralEvent.provider_id,
                subscribed_to(ReferralEvent.type),
            ),
        )
        .where(ReferralEvent.id.in_(events))
        .order_by(ReferralEvent.id, WebhookSubscription.id)
    )
    await session.execute(
        insert(typing.cast(Table, WebhookDelivery.__table__)).from_select(
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
    )


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
    delivery = (await session.scalars(statement.with_for_update())).one_or_none()
    if delivery is None:
        raise NotFound("No such delivery.")
    return delivery
