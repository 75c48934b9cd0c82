"""Webhooks over HTTP, with a real receiver on 127.0.0.1 (api-contract.md, Webhooks).

Deliveries are driven by the sandbox's ``runSandboxWebhookDeliveries`` or the worker's own
functions (the tests run with ``PRAP_WEBHOOKS=0``), and every delivery is checked with the
Standard Webhooks reference verifier."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI, Request
from httpx import ASGITransport, AsyncClient
from standardwebhooks.webhooks import Webhook

from app.core.auth import Principal, Role
from app.core.clock import Clock
from app.core.problems import InvalidTransition
from app.core.settings import Settings
from app.main import create_app
from app.referrals import service as referrals
from app.referrals.states import ReferralAction
from app.webhooks import worker
from tests.helpers import (
    OTHER_PROVIDER,
    PROVIDER,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    act,
    assert_problem,
    auth,
    create_referral,
)
from tests.webhook_support import Answer, Received, Receiver, sessions_of, settings_of

PERSONAL = ("Ada", "Byron", "AB123456C", "LS1 1AA", "0113", "ada@example.org", "1990-05-01")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


async def subscribe(
    client: AsyncClient,
    url: str,
    *,
    headers: dict[str, str] = PROVIDER_A,
    event_types: list[str] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url}
    if event_types is not None:
        body["event_types"] = event_types
    response = await client.post("/v1/webhook-subscriptions", headers=headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def run_deliveries(client: AsyncClient) -> dict[str, int]:
    response = await client.post("/v1/sandbox/webhook-deliveries/run", json={})
    assert response.status_code == 200, response.text
    result: dict[str, int] = response.json()
    return result


async def deliveries(
    client: AsyncClient, subscription_id: str, headers: dict[str, str] = PROVIDER_A
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/webhook-subscriptions/{subscription_id}/deliveries", headers=headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def verified(secret: str, receiver: Receiver) -> list[dict[str, Any]]:
    """Every request the receiver got, through the reference verifier (raises if one fails)."""
    hook = Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in receiver.received]


# --- subscriptions -------------------------------------------------------------------------


async def test_subscribe_shows_the_secret_once_then_lists_and_deletes(
    client: AsyncClient, receiver: Receiver
) -> None:
    created = await subscribe(client, receiver.url, event_types=["accepted", "ended"])
    assert created["secret"].startswith("whsec_")
    assert len(Webhook(created["secret"])._whsecret) >= 24  # the contract's minimum
    assert created["event_types"] == ["accepted", "ended"]
    listed = (await client.get("/v1/webhook-subscriptions", headers=PROVIDER_A)).json()["items"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert "secret" not in listed[0]
    gone = await client.delete(f"/v1/webhook-subscriptions/{created['id']}", headers=PROVIDER_A)
    assert gone.status_code == 204
    assert (await client.get("/v1/webhook-subscriptions", headers=PROVIDER_A)).json() == {
        "items": []
    }


async def test_providers_see_and_manage_only_their_own_subscriptions(
    client: AsyncClient, receiver: Receiver
) -> None:
    """domain.md §1: another provider's subscription answers 404, as a missing one does."""
    mine = await subscribe(client, receiver.url)
    base = f"/v1/webhook-subscriptions/{mine['id']}"
    assert (await client.get("/v1/webhook-subscriptions", headers=PROVIDER_B)).json() == {
        "items": []
    }
    assert_problem(await client.delete(base, headers=PROVIDER_B), 404, "not-found")
    assert_problem(await client.get(f"{base}/deliveries", headers=PROVIDER_B), 404, "not-found")
    retry = await client.post(f"{base}/deliveries/1/retry", headers=PROVIDER_B, json={})
    assert_problem(retry, 404, "not-found")


async def test_subscriptions_need_a_provider_with_the_referrals_scope(
    client: AsyncClient, receiver: Receiver
) -> None:
    claims_only = auth("provider", scopes=("claims",))
    for headers in (claims_only, auth("jcp"), auth("admin")):
        response = await client.post(
            "/v1/webhook-subscriptions", headers=headers, json={"url": receiver.url}
        )
        assert_problem(response, 403, "forbidden")
    assert_problem(await client.get("/v1/webhook-subscriptions"), 401, "unauthenticated")


@pytest.fixture
async def production_client(settings: Settings) -> AsyncIterator[AsyncClient]:
    """The same database, served with sandbox mode off."""
    application = create_app(settings.model_copy(update={"sandbox": False}))
    async with AsyncClient(
        transport=ASGITransport(app=application), base_url="http://prap.test"
    ) as client:
        yield client
    await application.state.engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "http://crm.example.org/hooks",  # not https
        "https://127.0.0.1/hooks",  # loopback
        "https://localhost:8443/hooks",  # a name for loopback
        "https://[::1]/hooks",
        "https://10.1.2.3/hooks",  # private
        "https://192.168.0.10/hooks",
        "https://169.254.169.254/latest/meta-data",  # link-local (cloud metadata)
        "https://[::ffff:127.0.0.1]/hooks",  # loopback inside IPv6
        "https://user:pass@93.184.215.14/hooks",  # credentials in the URL
        "ftp://93.184.215.14/hooks",
        "https:///no-host",
    ],
)
async def test_unsafe_urls_are_refused_outside_the_sandbox(
    production_client: AsyncClient, url: str
) -> None:
    response = await production_client.post(
        "/v1/webhook-subscriptions", headers=PROVIDER_A, json={"url": url}
    )
    body = assert_problem(response, 422, "validation-error")
    assert url not in response.text
    assert body["errors"][0]["field"] == "url"


async def test_a_public_https_url_is_accepted_outside_the_sandbox(
    production_client: AsyncClient,
) -> None:
    response = await production_client.post(
        "/v1/webhook-subscriptions", headers=PROVIDER_A, json={"url": "https://93.184.215.14/h"}
    )
    assert response.status_code == 201, response.text


async def test_the_sandbox_allows_http_to_loopback_but_not_private_addresses(
    client: AsyncClient,
) -> None:
    await subscribe(client, "http://127.0.0.1:9/hooks")
    for url in ("http://10.0.0.1/hooks", "http://169.254.169.254/", "http://[fe80::1]/"):
        response = await client.post(
            "/v1/webhook-subscriptions", headers=PROVIDER_A, json={"url": url}
        )
        assert_problem(response, 422, "validation-error")


# --- delivery ------------------------------------------------------------------------------


async def test_each_event_is_delivered_signed_without_personal_data(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    await api.create_contract()
    await api.set_clock("2026-03-02T09:00:00Z")
    subscription = await subscribe(client, receiver.url)
    referral = await create_referral(client)
    assert (await act(client, referral["id"], "accept")).status_code == 200
    assert (
        await act(client, referral["id"], "reject", {"reason": "other", "note": "Ada moved"})
    ).status_code == 409  # refused: no event, nothing to deliver

    assert await run_deliveries(client) == {"attempted": 2, "delivered": 2}

    payloads = verified(subscription["secret"], receiver)
    assert [p["type"] for p in payloads] == ["created", "accepted"]
    history = (
        await client.get(f"/v1/referrals/{referral['id']}/history", headers=PROVIDER_A)
    ).json()["items"]
    for payload, event in zip(payloads, history, strict=True):
        assert payload["id"] == event["id"]
        assert payload["referral_id"] == referral["id"]
        assert payload["data"]["status"] == event["status"]
        assert set(payload) == {"id", "type", "referral_id", "occurred_at", "data"}
    assert payloads[0]["data"]["programme"] == "JFS"
    assert payloads[0]["data"]["referral_date"] == "2026-03-02"
    for request in receiver.received:
        assert not any(value in request.body for value in PERSONAL)
        assert request.headers["content-type"] == "application/json"
    listed = await deliveries(client, subscription["id"])
    assert sorted(receiver.ids()) == sorted(d["id"] for d in listed)
    for delivery in listed:
        assert delivery["status"] == "delivered"
        assert delivery["attempts"] == 1
        assert delivery["last_status_code"] == 200
        assert delivery["next_attempt_at"] is None
        assert delivery["delivered_at"] == "2026-03-02T09:00:00Z"
    # Nothing more is due.
    assert await run_deliveries(client) == {"attempted": 0, "delivered": 0}


async def test_a_free_text_reason_or_note_is_never_delivered(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    await api.create_contract()
    subscription = await subscribe(client, receiver.url, event_types=["rejected", "backed_out"])
    referral = await create_referral(client)
    rejected = await act(
        client, referral["id"], "reject", {"reason": "other", "note": "Ada Byron moved to Leeds"}
    )
    assert rejected.status_code == 200
    await run_deliveries(client)
    (payload,) = verified(subscription["secret"], receiver)
    assert payload["data"]["reason"] == "other"  # a coded reason is sent
    assert "Leeds" not in receiver.received[0].body
    assert "note" not in payload["data"]


async def test_a_500_is_retried_with_backoff_on_the_service_clock(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    answers = iter([500, 200])
    receiver.answer = lambda _r: Answer(status=next(answers))
    await api.create_contract()
    await api.set_clock("2026-03-02T09:00:00Z")
    subscription = await subscribe(client, receiver.url, event_types=["created"])
    await create_referral(client)

    assert await run_deliveries(client) == {"attempted": 1, "delivered": 0}
    (delivery,) = await deliveries(client, subscription["id"])
    assert delivery["status"] == "pending"
    assert delivery["attempts"] == 1
    assert delivery["last_status_code"] == 500
    assert delivery["next_attempt_at"] == "2026-03-02T09:00:30Z"
    assert await run_deliveries(client) == {"attempted": 0, "delivered": 0}  # not due yet

    await api.set_clock("2026-03-02T09:00:30Z")
    assert await run_deliveries(client) == {"attempted": 1, "delivered": 1}
    (delivery,) = await deliveries(client, subscription["id"])
    assert (delivery["status"], delivery["attempts"]) == ("delivered", 2)
    first, second = receiver.received
    assert first.webhook_id == second.webhook_id == delivery["id"]  # same id on every retry
    verified(subscription["secret"], receiver)


async def test_a_timeout_is_retried(
    app: FastAPI, api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    """A receiver slower than the timeout (10 s in the contract; shortened here) is a
    failed attempt, and the delivery is tried again."""
    delays = iter([6.0, 0.0])
    receiver.answer = lambda _r: Answer(delay=next(delays))
    await api.create_contract()
    await api.set_clock("2026-03-02T09:00:00Z")
    subscription = await subscribe(client, receiver.url, event_types=["created"])
    await create_referral(client)
    settings = settings_of(app, webhook_timeout_seconds=2)

    assert await worker.run_until_idle(sessions_of(app), settings) == (1, 0)
    (delivery,) = await deliveries(client, subscription["id"])
    assert (delivery["status"], delivery["last_error"]) == ("pending", "timeout")
    assert delivery["last_status_code"] is None

    await api.set_clock("2026-03-02T09:01:00Z")
    assert await worker.run_until_idle(sessions_of(app), settings) == (1, 1)
    assert len(receiver.received) == 2


async def test_failed_after_24_hours_of_retries_then_retried_on_demand(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    receiver.answer = lambda _r: Answer(status=503)
    await api.create_contract()
    await api.set_clock("2026-03-02T09:00:00Z")
    subscription = await subscribe(client, receiver.url, event_types=["created"])
    await create_referral(client)
    await run_deliveries(client)
    # Still retried just inside the window...
    await api.set_clock("2026-03-03T08:59:59Z")
    assert await run_deliveries(client) == {"attempted": 1, "delivered": 0}
    (delivery,) = await deliveries(client, subscription["id"])
    assert delivery["status"] == "pending"
    # ...and failed at the first attempt once 24 hours have passed since the first (the
    # last one was due a minute after the one before).
    await api.set_clock("2026-03-03T09:00:59Z")
    assert await run_deliveries(client) == {"attempted": 1, "delivered": 0}
    (delivery,) = await deliveries(client, subscription["id"])
    assert (delivery["status"], delivery["attempts"]) == ("failed", 3)
    assert delivery["next_attempt_at"] is None
    await api.set_clock("2026-03-10T09:00:00Z")
    assert await run_deliveries(client) == {"attempted": 0, "delivered": 0}

    receiver.answer = lambda _r: Answer()
    retry = await client.post(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries/{delivery['id']}/retry",
        headers=PROVIDER_A,
        json={},
    )
    assert retry.status_code == 202, retry.text
    assert retry.json()["status"] == "pending"
    assert await run_deliveries(client) == {"attempted": 1, "delivered": 1}
    assert len(set(receiver.ids())) == 1
    missing = await client.post(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries/999999/retry",
        headers=PROVIDER_A,
        json={},
    )
    assert_problem(missing, 404, "not-found")


async def test_no_delivery_for_a_change_that_rolled_back(
    app: FastAPI, api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    """The outbox: a request that recorded an event and was then refused rolls back, and
    its pending delivery goes with it. The test-only route performs a real action through
    the request's own transaction (event and outbox rows flushed), then fails, as any later
    check of a request could."""

    async def accept_then_fail(referral_id: str, request: Request) -> None:
        principal = Principal(sub="adviser", role=Role.provider, provider_id=PROVIDER)
        await referrals.perform(
            request.state.db,
            Clock.at(datetime.now(UTC)),
            principal,
            referral_id,
            ReferralAction.accept,
            None,
            None,
            "acceptReferral",
        )
        raise InvalidTransition("Refused after the change was flushed.")

    path = "/test-only/accept-then-fail/{referral_id}"
    if not any(getattr(r, "path", None) == path for r in app.router.routes):
        app.add_api_route(path, accept_then_fail, methods=["POST"], include_in_schema=False)
    await api.create_contract()
    subscription = await subscribe(client, receiver.url)
    referral = await create_referral(client)
    await run_deliveries(client)
    assert [p["type"] for p in verified(subscription["secret"], receiver)] == ["created"]

    response = await client.post(f"/test-only/accept-then-fail/{referral['id']}", json={})
    assert_problem(response, 409, "invalid-transition")

    assert await run_deliveries(client) == {"attempted": 0, "delivered": 0}
    assert len(await deliveries(client, subscription["id"])) == 1
    got = await client.get(f"/v1/referrals/{referral['id']}", headers=PROVIDER_A)
    assert got.json()["status"] == "referred"


async def test_two_workers_racing_deliver_each_delivery_once(
    app: FastAPI, api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    receiver.answer = lambda _r: Answer(delay=0.01)
    await api.create_contract()
    subscription = await subscribe(client, receiver.url)
    for n in range(12):
        await create_referral(client, nino=f"AB{n:06d}C")
    settings = settings_of(app, webhook_concurrency=4)
    sessions = sessions_of(app)
    (a_tried, a_ok), (b_tried, b_ok) = await asyncio.gather(
        worker.run_until_idle(sessions, settings), worker.run_until_idle(sessions, settings)
    )
    assert a_tried + b_tried == a_ok + b_ok == 12
    assert Counter(receiver.ids()).most_common(1)[0][1] == 1
    assert len(receiver.received) == 12
    verified(subscription["secret"], receiver)


async def test_deliveries_of_one_referral_arrive_in_order(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    """A later event of a referral waits while an earlier one is still pending (here, after
    a 500), so a CRM never sees `accepted` before `created`; other referrals go on."""
    await api.create_contract()
    await api.set_clock("2026-03-02T09:00:00Z")
    subscription = await subscribe(client, receiver.url)
    first = await create_referral(client, nino="AB000001C")
    await act(client, first["id"], "accept")
    await act(client, first["id"], "start", {"start_date": "2026-03-02"})
    other = await create_referral(client, nino="AB000002C")
    failed_once: set[str] = set()

    def answer(request: Received) -> Answer:
        body = request.json()
        if (
            body["referral_id"] == first["id"]
            and body["type"] == "created"
            and request.webhook_id not in failed_once
        ):
            failed_once.add(request.webhook_id)
            return Answer(status=500)
        return Answer()

    receiver.answer = answer
    assert await run_deliveries(client) == {"attempted": 2, "delivered": 1}
    # Two referrals' first deliveries go out at once: their arrival order is not defined.
    assert sorted(r.json()["referral_id"] for r in receiver.received) == sorted(
        [first["id"], other["id"]]
    )

    await api.set_clock("2026-03-02T09:01:00Z")
    assert await run_deliveries(client) == {"attempted": 3, "delivered": 3}
    of_first = [r.json() for r in receiver.received if r.json()["referral_id"] == first["id"]]
    assert [p["type"] for p in of_first] == ["created", "created", "accepted", "started"]
    verified(subscription["secret"], receiver)


async def test_another_providers_events_are_never_delivered_to_you(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    theirs = await Receiver().start()
    try:
        await api.create_contract()
        await api.create_contract(provider_id=OTHER_PROVIDER)
        mine = await subscribe(client, receiver.url)
        await subscribe(client, theirs.url, headers=PROVIDER_B)
        await create_referral(client, nino="AB000001C")
        other = await create_referral(client, nino="AB000002C", provider_id=OTHER_PROVIDER)
        await run_deliveries(client)
        assert [p["referral_id"] for p in verified(mine["secret"], receiver)] != [other["id"]]
        assert [r.json()["referral_id"] for r in theirs.received] == [other["id"]]
        assert all(r.json()["referral_id"] != other["id"] for r in receiver.received)
    finally:
        await theirs.stop()


async def test_event_types_filter_what_is_delivered(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    await api.create_contract()
    subscription = await subscribe(client, receiver.url, event_types=["did_not_attend"])
    referral = await create_referral(client)
    await act(client, referral["id"], "acknowledge")
    await act(client, referral["id"], "did-not-attend")
    await run_deliveries(client)
    assert [p["type"] for p in verified(subscription["secret"], receiver)] == ["did_not_attend"]


async def test_the_automatic_jobs_events_are_delivered(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    """JFS 3.40: the auto-DNA job's set-based close writes its deliveries set-based too."""
    await api.create_contract()
    await api.set_clock("2026-03-02T09:00:00Z")
    subscription = await subscribe(client, receiver.url, event_types=["auto_did_not_attend"])
    referrals_made = [await create_referral(client, nino=f"AB{n:06d}C") for n in range(3)]
    await api.set_clock("2026-04-01T09:00:00Z")
    run = await client.post("/v1/jobs/auto-dna/runs", headers=auth("admin"), json={})
    assert run.status_code == 200, run.text
    assert run.json()["closed"] == 3
    assert await run_deliveries(client) == {"attempted": 3, "delivered": 3}
    payloads = verified(subscription["secret"], receiver)
    assert sorted(p["referral_id"] for p in payloads) == sorted(r["id"] for r in referrals_made)
    assert {p["data"]["reason"] for p in payloads} == {"did_not_attend"}


async def test_deleting_a_subscription_stops_its_deliveries(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    await api.create_contract()
    subscription = await subscribe(client, receiver.url)
    await create_referral(client)
    await client.delete(f"/v1/webhook-subscriptions/{subscription['id']}", headers=PROVIDER_A)
    assert await run_deliveries(client) == {"attempted": 0, "delivered": 0}
    assert receiver.received == []


async def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    await api.create_contract()
    subscription = await subscribe(client, receiver.url)
    for n in range(3):
        await create_referral(client, nino=f"AB{n:06d}C")
    base = f"/v1/webhook-subscriptions/{subscription['id']}/deliveries"
    page = (await client.get(base, headers=PROVIDER_A, params={"limit": 2})).json()
    assert len(page["items"]) == 2
    rest = (
        await client.get(base, headers=PROVIDER_A, params={"cursor": page["next_cursor"]})
    ).json()
    ids = [int(d["id"]) for d in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 3
    assert rest["next_cursor"] is None
    bad = await client.get(base, headers=PROVIDER_A, params={"cursor": "nope"})
    assert_problem(bad, 422, "validation-error")


async def test_the_sandbox_run_is_404_outside_the_sandbox(
    production_client: AsyncClient,
) -> None:
    response = await production_client.post("/v1/sandbox/webhook-deliveries/run", json={})
    assert_problem(response, 404, "not-found")


async def test_a_slow_receiver_holds_up_neither_other_receivers_nor_the_api(
    app: FastAPI, api: Api, client: AsyncClient, receiver: Receiver
) -> None:
    """The in-server worker (``worker_loop``, as with PRAP_WEBHOOKS=1) with one receiver
    that keeps every delivery waiting: another provider's receiver gets all of its
    deliveries while the slow one still has them in hand, and the API answers meanwhile."""
    receiver.answer = lambda _r: Answer(delay=20.0)
    fast = await Receiver().start()
    await api.create_contract()
    await api.create_contract(provider_id=OTHER_PROVIDER)
    await subscribe(client, receiver.url)
    theirs = await subscribe(client, fast.url, headers=PROVIDER_B)
    for n in range(6):
        await create_referral(client, nino=f"AB{n:06d}C")
    for n in range(3):
        await create_referral(client, nino=f"AC{n:06d}C", provider_id=OTHER_PROVIDER)
    settings = settings_of(app, webhook_concurrency=4, webhook_timeout_seconds=30)
    loop = asyncio.create_task(worker.worker_loop(sessions_of(app), settings))
    try:
        for _ in range(300):  # at most about 15 s, on a busy machine
            if len(fast.received) == 3:
                break
            await asyncio.sleep(0.05)
        assert len(fast.received) == 3, "the slow receiver held up the fast one"
        assert receiver.in_progress == 2  # its half of the slots, all still waiting
        listed = await client.get("/v1/webhook-subscriptions", headers=PROVIDER_B)
        assert listed.status_code == 200
        assert receiver.in_progress == 2
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await fast.stop()
    verified(theirs["secret"], fast)
