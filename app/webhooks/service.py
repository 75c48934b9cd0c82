"""Webhook use cases, and the outbox: the hooks that write pending deliveries in the same
transaction as the events they announce (api-contract.md, Webhooks: "An event and its
pending deliveries commit in one transaction, so no event is ever lost or sent for a change
that rolled back")."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import Insert, Select, Subquery
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.auth import Principal
from app.core.clock import Clock
from app.core.ids import new_id
from app.core.problems import FieldError, NotFound, ValidationProblem
from app.referrals import service as referrals
from app.referrals.states import EventType
from app.webhooks import repository
from app.webhooks.models import WebhookDelivery, WebhookSubscription
from app.webhooks.schemas import (
    DeliveryOut,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
)
from app.webhooks.signing import new_secret
from app.webhooks.states import DeliveryStatus
from app.webhooks.urls import check_subscription_url

# Each event fans out to every subscription of its provider: keep the fan-out small.
MAX_SUBSCRIPTIONS_PER_PROVIDER = 10


# --- the outbox ----------------------------------------------------------------------------


class NewEvent(Protocol):
    """What the outbox reads of a referral event just added to the session (its ``id`` is
    None until flushed)."""

    @property
    def id(self) -> int | None: ...
    @property
    def referral_id(self) -> str: ...
    @property
    def provider_id(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def occurred_at(self) -> datetime: ...


async def enqueue_for_event(session: AsyncSession, event: NewEvent) -> None:
    """Pending deliveries for one event just added to the session, in the request's
    transaction. Called by ``referrals.service._record_event``, so every event type recorded
    there is covered."""
    subscription_ids = await repository.subscriptions_for(session, event.provider_id, event.type)
    if subscription_ids and event.id is None:
        # The deliveries point at the event by id (the query above has usually flushed it).
        await session.flush()
    for subscription_id in subscription_ids:
        assert event.id is not None
        repository.add_delivery(
            session,
            WebhookDelivery(
                subscription_id=subscription_id,
                event_id=event.id,
                referral_id=event.referral_id,
                event_type=event.type,
                status=str(DeliveryStatus.pending),
                attempts=0,
                created_at=event.occurred_at,
                next_attempt_at=event.occurred_at,
            ),
        )


async def enqueue_for_events(session: AsyncSession, events: Select[int]) -> None:
    """Pending deliveries for events already written set-based (the automatic jobs): one
    INSERT ... SELECT joining the subscriptions, in the jobs' own transaction. ``events``
    selects the ids of the events to announce."""
    statement = repository.deliveries_insert(referrals.announced_events(events))
    await repository.insert_deliveries(session, statement)


def deliveries_for(announced: Subquery) -> Insert:
    """The outbox's INSERT ... SELECT for the events ``announced`` describes
    (``referrals.service.announced_events``'s columns): referrals runs it in the very
    statement that writes an action's event, so announcing costs no round trip of its own."""
    return repository.deliveries_insert(announced)


# --- subscriptions -------------------------------------------------------------------------


def _event_types_column(event_types: list[EventType] | None) -> str | None:
    if event_types is None:
        return None
    return "," + ",".join(dict.fromkeys(str(t) for t in event_types)) + ","


def _event_types_of(subscription: WebhookSubscription) -> list[EventType] | None:
    if subscription.event_types is None:
        return None
    return [EventType(t) for t in subscription.event_types.strip(",").split(",") if t]


def subscription_out(subscription: WebhookSubscription) -> SubscriptionOut:
    return SubscriptionOut(
        id=subscription.id,
        url=subscription.url,
        event_types=_event_types_of(subscription),
        created_at=subscription.created_at,
    )


async def create_subscription(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    body: SubscriptionCreate,
    *,
    sandbox: bool,
) -> SubscriptionCreated:
    await check_subscription_url(body.url, sandbox=sandbox)
    existing = await repository.count_subscriptions(session, principal.provider_id)
    if existing >= MAX_SUBSCRIPTIONS_PER_PROVIDER:
        message = f"At most {MAX_SUBSCRIPTIONS_PER_PROVIDER} subscriptions per provider."
        raise ValidationProblem(message, errors=[FieldError(field="url", message=message)])
    assert principal.provider_id is not None  # a provider token always carries one
    subscription = WebhookSubscription(
        id=new_id(),
        provider_id=principal.provider_id,
        url=body.url,
        event_types=_event_types_column(body.event_types),
        secret=new_secret(),
        created_by=principal.sub,
        created_at=clock.now,
    )
    await repository.add_subscription(session, subscription)
    return SubscriptionCreated(
        **subscription_out(subscription).model_dump(), secret=subscription.secret
    )


async def list_subscriptions(session: AsyncSession, principal: Principal) -> list[SubscriptionOut]:
    return [subscription_out(s) for s in await repository.subscriptions_of(session, principal)]


async def delete_subscription(
    session: AsyncSession, principal: Principal, subscription_id: str
) -> None:
    """Its deliveries go with it (nothing more is sent to a URL the provider gave up)."""
    subscription = await repository.get_readable_subscription(session, principal, subscription_id)
    await repository.delete_subscription(session, subscription)


# --- deliveries ----------------------------------------------------------------------------


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    pending = delivery.status == DeliveryStatus.pending
    return DeliveryOut(
        id=str(delivery.id),
        event_id=delivery.event_id,
        event_type=EventType(delivery.event_type),
        referral_id=delivery.referral_id,
        status=DeliveryStatus(delivery.status),
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    subscription_id: str,
    *,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryOut], str | None]:
    """Newest first."""
    subscription = await repository.get_readable_subscription(session, principal, subscription_id)
    page, next_cursor = await repository.page_of_deliveries(
        session, subscription.id, cursor=cursor, limit=limit
    )
    return [delivery_out(d) for d in page], next_cursor


def _delivery_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("No such delivery.")
    return int(raw)


async def retry_delivery(
    session: AsyncSession,
    clock: Clock,
    principal: Principal,
    subscription_id: str,
    delivery_id: str,
) -> DeliveryOut:
    """Due again now, with a fresh 24-hour window; the same ``webhook-id``, so a receiver
    that had it already can tell."""
    subscription = await repository.get_readable_subscription(session, principal, subscription_id)
    delivery = await repository.delivery_of(session, subscription.id, _delivery_id(delivery_id))
    delivery.status = str(DeliveryStatus.pending)
    delivery.next_attempt_at = clock.now
    delivery.first_attempt_at = None
    await session.flush()
    return delivery_out(delivery)
