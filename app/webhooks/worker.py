"""The delivery worker: sends due deliveries, signed, and records what happened.

A delivery is taken in a short transaction that leases it (on PostgreSQL the candidates are
read ``FOR UPDATE SKIP LOCKED``; SQLite serialises writers, so there one process delivers),
sent with no transaction open, and its outcome recorded in another short transaction that
is conditional on the lease. So several replicas send each delivery once; a worker killed
mid-send loses nothing, because its lease runs out (real time) and the delivery is taken
again (at least once: receivers de-duplicate by ``webhook-id``). Each send has its own
timeout and the worker keeps many in flight, so a slow or dead receiver holds up only its
own deliveries, and never the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx
import structlog
from prometheus_client import Counter as MetricCounter
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.clock import Clock, real_now
from app.core.settings import Settings
from app.referrals import service as referrals
from app.sandbox.service import read_clock
from app.webhooks import repository
from app.webhooks.models import WebhookDelivery
from app.webhooks.payload import delivery_body
from app.webhooks.schedule import next_attempt_after_failure
from app.webhooks.signing import signed_headers
from app.webhooks.states import DeliveryStatus
from app.webhooks.urls import UnsafeUrl, parse_target, resolve_allowed

logger = structlog.get_logger("prap.webhooks")


def lease_length(settings: Settings) -> timedelta:
    """Well past the send timeout, so a live worker never loses its lease mid-send; short
    enough that a killed worker's deliveries are soon taken again."""
    return timedelta(seconds=2 * settings.webhook_timeout_seconds + 2)


POLL_SECONDS = 1.0

ATTEMPTS = MetricCounter(
    "prap_webhook_attempts_total",
    "Webhook delivery attempts, by outcome",
    ["outcome"],  # delivered, or the failure: http, timeout, connection, address
)


def per_subscription(settings: Settings) -> int:
    """At most half a worker's slots go to one subscription, so one slow or dead receiver
    leaves the other half to everyone else."""
    return max(1, settings.webhook_concurrency // 2)


@dataclass(frozen=True, slots=True)
class Taken:
    """A leased delivery and what sending it needs."""

    id: int
    lease_token: str
    subscription_id: str
    url: str
    secret: str
    body: str
    attempts: int
    first_attempt_at: datetime | None


@dataclass(frozen=True, slots=True)
class Outcome:
    delivered: bool
    status_code: int | None = None
    error: str | None = None


async def take_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    limit: int,
    busy: Counter[str] | None = None,
) -> tuple[Clock, list[Taken]]:
    """Lease up to ``limit`` due deliveries, oldest due first, at most ``per_subscription``
    per subscription counting those already in flight (``busy``)."""
    busy = busy if busy is not None else Counter()
    cap = per_subscription(settings)
    async with sessions() as session, session.begin():
        clock = await read_clock(session, sandbox=settings.sandbox)
        now = real_now()
        # Subscriptions with all their slots busy are left out in SQL, so a backlog of one
        # never fills the candidates and hides everyone else's deliveries.
        saturated = [sub for sub, n in busy.items() if n >= cap]
        candidates = await repository.due_candidates(
            session, due_by=clock.now, now=now, saturated=saturated, limit=limit * 2
        )
        chosen: list[tuple[WebhookDelivery, str, str]] = []
        taken_now: Counter[str] = Counter()
        for delivery, url, secret in candidates:
            sub = delivery.subscription_id
            if busy[sub] + taken_now[sub] >= cap:
                continue
            taken_now[sub] += 1
            chosen.append((delivery, url, secret))
            if len(chosen) == limit:
                break
        if not chosen:
            return clock, []
        events = {
            e.id: e
            for e in await referrals.events_by_id(session, [d.event_id for d, _, _ in chosen])
        }
        token = secrets.token_hex(16)  # this take's: the outcome is stored only under it
        await repository.lease(
            session, [d.id for d, _, _ in chosen], until=now + lease_length(settings), token=token
        )
        taken = []
        for delivery, url, secret in chosen:
            taken.append(
                Taken(
                    id=delivery.id,
                    lease_token=token,
                    subscription_id=delivery.subscription_id,
                    url=url,
                    secret=secret,
                    body=delivery_body(events[delivery.event_id]),
                    attempts=delivery.attempts,
                    first_attempt_at=delivery.first_attempt_at,
                )
            )
    return clock, taken


async def send(client: httpx.AsyncClient, taken: Taken, *, sandbox: bool) -> Outcome:
    """One signed POST. The host is resolved and checked now, and the request goes to the
    address that was checked (TLS still verifies the host's name), so a name re-pointed at
    an internal address after subscribing is refused (DNS rebinding)."""
    headers = signed_headers(taken.secret, str(taken.id), real_now(), taken.body)
    headers["content-type"] = "application/json"
    try:
        target = parse_target(taken.url, sandbox=sandbox)
        address = (await resolve_allowed(target, sandbox=sandbox))[0]
    except UnsafeUrl:
        return Outcome(delivered=False, error="address")
    parts = urlsplit(taken.url)
    netloc = f"[{address}]" if ":" in address else address
    if parts.port is not None:
        netloc += f":{parts.port}"
    url = urlunsplit(parts._replace(netloc=netloc))
    headers["host"] = parts.netloc
    extensions = {"sni_hostname": target.host}
    try:
        response = await client.post(
            url, content=taken.body.encode(), headers=headers, extensions=extensions
        )
    except httpx.TimeoutException:
        return Outcome(delivered=False, error="timeout")
    except httpx.HTTPError:
        return Outcome(delivered=False, error="connection")
    return Outcome(delivered=200 <= response.status_code < 300, status_code=response.status_code)


async def record(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    taken: Taken,
    outcome: Outcome,
) -> None:
    """Store the outcome, if the lease is still ours (else another worker has it now). The
    service clock is the one read when the delivery was taken (at most a timeout ago)."""
    async with sessions() as session, session.begin():
        attempts = taken.attempts + 1
        first = taken.first_attempt_at or clock.now
        values: dict[str, object] = {
            "attempts": attempts,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "first_attempt_at": first,
            "last_attempt_at": clock.now,
            "lease_until": None,
            "lease_token": None,
        }
        if outcome.delivered:
            values |= {"status": str(DeliveryStatus.delivered), "delivered_at": clock.now}
        else:
            retry_at = next_attempt_after_failure(first, clock.now, attempts)
            if retry_at is None:
                values["status"] = str(DeliveryStatus.failed)
            else:
                values["next_attempt_at"] = retry_at
        await repository.record_attempt(session, taken.id, taken.lease_token, values)


async def attempt(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
    client: httpx.AsyncClient,
    taken: Taken,
) -> Outcome:
    outcome = await send(client, taken, sandbox=settings.sandbox)
    await record(sessions, clock, taken, outcome)
    ATTEMPTS.labels("delivered" if outcome.delivered else outcome.error or "http").inc()
    return outcome


def new_client(settings: Settings) -> httpx.AsyncClient:
    # No redirects: a 3xx is not a delivery, and following one would skip the address check.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        trust_env=False,
        limits=httpx.Limits(max_connections=settings.webhook_concurrency * 2),
    )


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: httpx.AsyncClient,
) -> tuple[int, int]:
    """One round: attempt what is due now, all at once; (attempted, delivered)."""
    clock, batch = await take_due(sessions, settings, limit=settings.webhook_concurrency)
    outcomes = await asyncio.gather(*(attempt(sessions, settings, clock, client, t) for t in batch))
    return len(outcomes), sum(o.delivered for o in outcomes)


MAX_ROUNDS = 1_000


async def run_until_idle(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> tuple[int, int]:
    """Attempt every due delivery, repeating until none is due (the sandbox endpoint)."""
    attempted = delivered = 0
    async with new_client(settings) as client:
        for _ in range(MAX_ROUNDS):
            tried, ok = await deliver_due(sessions, settings, client)
            if tried == 0:
                break
            attempted += tried
            delivered += ok
    return attempted, delivered


async def worker_loop(sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
    """Deliver for as long as the process runs (``PRAP_WEBHOOKS=1`` or ``prap worker``):
    take work as slots free up (a quarter of them at a time, to take in batches), so one
    slow receiver never stalls the rest."""
    in_flight: dict[asyncio.Task[Outcome], str] = {}
    batch = max(1, settings.webhook_concurrency // 4)
    async with new_client(settings) as client:
        try:
            while True:
                free = settings.webhook_concurrency - len(in_flight)
                taken: list[Taken] = []
                if free >= batch or not in_flight:
                    try:
                        busy = Counter(in_flight.values())
                        clock, taken = await take_due(sessions, settings, limit=free, busy=busy)
                    except Exception:
                        logger.exception("taking deliveries failed")
                for item in taken:
                    task = asyncio.create_task(attempt(sessions, settings, clock, client, item))
                    in_flight[task] = item.subscription_id
                if not in_flight:
                    await asyncio.sleep(POLL_SECONDS)
                    continue
                busy_now = Counter(in_flight.values())
                if (
                    taken
                    and settings.webhook_concurrency - len(in_flight) >= batch
                    and any(
                        busy_now[t.subscription_id] >= per_subscription(settings) for t in taken
                    )
                ):
                    continue  # a subscription filled its share: others' may be due behind it
                # With slots to spare, look again after a while even if nothing finishes (a
                # slow receiver must not delay the next work); else when a slot frees.
                spare = settings.webhook_concurrency - len(in_flight) >= batch
                await asyncio.wait(
                    in_flight,
                    timeout=POLL_SECONDS if spare else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in [t for t in in_flight if t.done()]:
                    del in_flight[task]
                    error = None if task.cancelled() else task.exception()
                    if error is not None:
                        logger.error("delivery attempt failed", error=type(error).__name__)
        finally:
            for task in in_flight:
                task.cancel()
            for task in in_flight:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
