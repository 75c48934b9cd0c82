"""Resilience: kill the server with SIGKILL in the middle of a load run, restart it, and check
that every acknowledged request is in the database and no referral is half-changed (its
history equals its state). One transaction per request makes this hold; this proves it.
And kill it in the middle of webhook deliveries: after a restart none is lost."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import defaultdict
from functools import partial
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook

from app.core.auth import Role
from app.referrals.states import ReferralStatus
from benchmarks.load import nino
from benchmarks.server import start_server, stop_server
from tests.helpers import PROVIDER_A, TEST_SECRET, Api, create_referral, token
from tests.webhook_support import Answer, Receiver

ACTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("acknowledge", {}, "acknowledged"),
    ("accept", {}, "accepted"),
    ("start", {"start_date": "TODAY"}, "started"),
    ("end", {"end_code": 1, "end_date": "TODAY", "last_engagement_date": "TODAY"}, "ended"),
]


ACTION_EVENT = {a: event for a, _, event in ACTIONS}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _user(
    base: str, user: int, acknowledged: dict[str, list[str]], stop: asyncio.Event, today: str
) -> None:
    jcp = {"Authorization": f"Bearer {token(Role.jcp, sub=f'coach-{user}')}"}
    staff = {"Authorization": f"Bearer {token(Role.provider, sub=f'adviser-{user}')}"}
    n = user * 100_000
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while not stop.is_set():
            n += 1
            body = {
                "programme": "JFS",
                "provider_id": "P100",
                "participant": {"forename": "R", "surname": "S", "nino": nino(n)},
            }
            try:
                created = await client.post("/v1/referrals", headers=jcp, json=body)
            except httpx.HTTPError:
                return
            if created.status_code != 201:
                continue
            rid = created.json()["id"]
            acknowledged[rid].append("created")
            for action, payload, _ in ACTIONS:
                payload = {k: today if v == "TODAY" else v for k, v in payload.items()}
                try:
                    response = await client.post(
                        f"/v1/referrals/{rid}/{action}", headers=staff, json=payload
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    acknowledged[rid].append(action)


async def test_sigkill_mid_load_loses_nothing_acknowledged(
    app: FastAPI, api: Api, database_url: str
) -> None:
    await api.create_contract()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = await asyncio.to_thread(start_server, database_url, port, 2, TEST_SECRET)
    acknowledged: dict[str, list[str]] = defaultdict(list)
    stop = asyncio.Event()
    today = time.strftime("%Y-%m-%d", time.gmtime())
    users = [asyncio.create_task(_user(base, u, acknowledged, stop, today)) for u in range(6)]
    await asyncio.sleep(2.5)
    await asyncio.to_thread(stop_server, server, signal.SIGKILL)  # mid-flight, no warning
    stop.set()
    await asyncio.gather(*users)
    assert sum(len(v) for v in acknowledged.values()) > 20, "the load never got going"

    server = await asyncio.to_thread(start_server, database_url, port, 1, TEST_SECRET)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/readyz")).status_code == 200
    finally:
        await asyncio.to_thread(stop_server, server)

    async with app.state.engine.connect() as connection:
        referrals = {
            row.id: row
            for row in await connection.execute(text("SELECT id, status, version FROM referrals"))
        }
        events: dict[str, list[Any]] = defaultdict(list)
        for row in await connection.execute(
            text(
                "SELECT referral_id, type, status, referral_version FROM referral_events"
                " ORDER BY id"
            )
        ):
            events[row.referral_id].append(row)

    # Every acknowledged request is there.
    for rid, done in acknowledged.items():
        assert rid in referrals, "an acknowledged referral was lost"
        types = [e.type for e in events[rid]]
        assert types[: len(done)] == [
            "created" if d == "created" else ACTION_EVENT[d] for d in done
        ]
    # No referral is half-changed: its history replays to its state, version by version.
    for rid, referral in referrals.items():
        history = events[rid]
        assert history, "a referral without its creation event"
        assert [e.referral_version for e in history] == list(range(1, len(history) + 1))
        assert history[-1].status == referral.status
        assert referral.version == len(history)
        assert ReferralStatus(referral.status)


async def _delivery_states(app: FastAPI) -> dict[str, str]:
    async with app.state.engine.connect() as connection:
        rows = await connection.execute(text("SELECT id, status FROM webhook_deliveries"))
        return {str(row.id): row.status for row in rows}


async def test_sigkill_mid_delivery_loses_no_delivery(
    app: FastAPI, api: Api, client: httpx.AsyncClient, database_url: str
) -> None:
    """The server's own worker (PRAP_WEBHOOKS=1) is killed while receivers are still
    answering; after a restart every delivery is delivered, none lost: a lease that died
    with its worker runs out and the delivery is sent again (at least once)."""
    receiver = await Receiver(answer=lambda _r: Answer(delay=0.5)).start()
    try:
        await api.create_contract()
        subscription = (
            await client.post(
                "/v1/webhook-subscriptions", headers=PROVIDER_A, json={"url": receiver.url}
            )
        ).json()
        for n in range(20):
            await create_referral(client, nino=nino(500_000 + n))
        assert len(await _delivery_states(app)) == 20

        port = _free_port()
        env = {
            "PRAP_SANDBOX": "1",  # http to a loopback receiver
            "PRAP_WEBHOOKS": "1",
            "PRAP_WEBHOOK_TIMEOUT_SECONDS": "5",  # leases of 12 s
            "PRAP_WEBHOOK_CONCURRENCY": "4",
        }
        server = await asyncio.to_thread(
            partial(start_server, database_url, port, 1, TEST_SECRET, extra_env=env)
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if receiver.in_progress:
                break
            await asyncio.sleep(0.05)
        assert receiver.in_progress > 0, "the worker never started sending"
        await asyncio.to_thread(stop_server, server, signal.SIGKILL)  # mid-delivery
        before = await _delivery_states(app)
        assert list(before.values()).count("delivered") < 20, "killed too late to tell"

        receiver.answer = lambda _r: Answer()
        server = await asyncio.to_thread(
            partial(start_server, database_url, port, 1, TEST_SECRET, extra_env=env)
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                states = await _delivery_states(app)
                if set(states.values()) == {"delivered"}:
                    break
                await asyncio.sleep(0.2)
        finally:
            await asyncio.to_thread(stop_server, server)
        assert set(states.values()) == {"delivered"}, states
        assert set(receiver.ids()) == set(states)  # every delivery reached the receiver
        hook = Webhook(subscription["secret"])
        for request in receiver.received:
            hook.verify(request.body, request.headers)
    finally:
        await receiver.stop()
