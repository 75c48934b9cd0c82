"""Webhook endpoints (api-contract.md, Webhooks), and the sandbox's delivery run."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.contracts.schemas import WithoutNul
from app.core.auth import Principal, Role, Scope, require
from app.core.deps import AppSettings, RequestClock, Session
from app.core.pagination import CursorParam, Limit
from app.core.problems import NotFound, problem_responses
from app.referrals.schemas import EmptyBody
from app.sandbox.router import SANDBOX_NOTE, SandboxSettings
from app.webhooks import service, worker
from app.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    DeliveryRunResult,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionList,
)

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["webhooks"])

# Managing a CRM's webhooks is delivery staff's business: the `referrals` scope.
ProviderStaff = Annotated[Principal, Depends(require(Role.provider, scopes=(Scope.referrals,)))]
SubscriptionId = Annotated[str, Path(alias="id", max_length=40), WithoutNul]
DeliveryId = Annotated[str, Path(max_length=40), WithoutNul]


@router.post(
    "",
    operation_id="createWebhookSubscription",
    status_code=201,
    response_model=SubscriptionCreated,
)
async def create_webhook_subscription(
    body: SubscriptionCreate,
    principal: ProviderStaff,
    session: Session,
    clock: RequestClock,
    settings: AppSettings,
    response: Response,
) -> SubscriptionCreated:
    """Subscribe a URL to the events of your referrals. The `secret` is shown only in this
    answer: keep it to verify each delivery's `webhook-signature`."""
    created = await service.create_subscription(
        session, clock, principal, body, sandbox=settings.sandbox
    )
    response.headers["Location"] = f"/v1/webhook-subscriptions/{created.id}"
    return created


@router.get("", operation_id="listWebhookSubscriptions", response_model=SubscriptionList)
async def list_webhook_subscriptions(
    principal: ProviderStaff, session: Session
) -> SubscriptionList:
    """Your subscriptions (without their secrets)."""
    return SubscriptionList(items=await service.list_subscriptions(session, principal))


@router.delete(
    "/{id}",
    operation_id="deleteWebhookSubscription",
    status_code=204,
    response_class=Response,
    responses=problem_responses(NotFound),
)
async def delete_webhook_subscription(
    subscription_id: SubscriptionId, principal: ProviderStaff, session: Session
) -> Response:
    """Stop deliveries to this URL; its pending deliveries are dropped."""
    await service.delete_subscription(session, principal, subscription_id)
    return Response(status_code=204)


@router.get(
    "/{id}/deliveries",
    operation_id="listWebhookDeliveries",
    response_model=DeliveryPage,
    responses=problem_responses(NotFound),
)
async def list_webhook_deliveries(
    subscription_id: SubscriptionId,
    principal: ProviderStaff,
    session: Session,
    cursor: CursorParam = None,
    limit: Limit = 50,
) -> DeliveryPage:
    """The subscription's deliveries, newest first."""
    items, next_cursor = await service.list_deliveries(
        session, principal, subscription_id, cursor=cursor, limit=limit
    )
    return DeliveryPage(items=items, next_cursor=next_cursor)


@router.post(
    "/{id}/deliveries/{delivery_id}/retry",
    operation_id="retryWebhookDelivery",
    status_code=202,
    response_model=DeliveryOut,
    responses=problem_responses(NotFound),
)
async def retry_webhook_delivery(
    subscription_id: SubscriptionId,
    delivery_id: DeliveryId,
    body: EmptyBody,
    principal: ProviderStaff,
    session: Session,
    clock: RequestClock,
) -> DeliveryOut:
    """Send this delivery again as soon as possible, with a fresh retry window."""
    return await service.retry_delivery(session, clock, principal, subscription_id, delivery_id)


sandbox_router = APIRouter(
    prefix="/v1/sandbox",
    tags=["sandbox"],
    responses=problem_responses(NotFound),
)


async def _sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return sessions


@sandbox_router.post(
    "/webhook-deliveries/run",
    operation_id="runSandboxWebhookDeliveries",
    response_model=DeliveryRunResult,
    description="Attempt every delivery that is due by the service clock, repeating until "
    f"none is due, and answer when they have finished. {SANDBOX_NOTE}",
)
async def run_sandbox_webhook_deliveries(
    body: EmptyBody,
    settings: SandboxSettings,
    sessions: Annotated[async_sessionmaker[AsyncSession], Depends(_sessions)],
) -> DeliveryRunResult:
    # Its own short transactions (never the request's: a send must not hold one open).
    attempted, delivered = await worker.run_until_idle(sessions, settings)
    return DeliveryRunResult(attempted=attempted, delivered=delivered)
