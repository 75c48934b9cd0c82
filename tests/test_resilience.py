"""Resilience: kill the server with SIGKILL in the middle of a load run, restart it, and check
that every acknowledged request is in the database and no referral is half-changed (its
history equals its state). One transaction per request makes this hold; this proves it."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections import defaultdict
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from app.core.auth import Role
from app.referrals.states import ReferralStatus
from benchmarks.load import nino
from benchmarks.server import start_server, stop_server
from tests.helpers import TEST_SECRET, Api, token

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
