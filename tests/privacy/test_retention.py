"""The retention job (JFS 1.33, GEN 76-77, 99-100; domain.md §10): after a contract's Records
Retention End Date, every closed referral of that contract is erased, by a daily job that can
also be run on demand."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN, JCP, POST, Api, act, assert_problem, auth, create_referral


async def _retention(client: AsyncClient, as_of: str | None = None) -> dict[str, Any]:
    body = {"as_of": as_of} if as_of else {}
    response = await client.post("/v1/jobs/retention/runs", headers=ADMIN, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def _closed(client: AsyncClient, nino: str, provider_id: str) -> str:
    referral = await create_referral(client, nino=nino, provider_id=provider_id)
    rejected = await act(
        client,
        referral["id"],
        "reject",
        {"reason": "other", "note": "Spoke to Ada"},
        headers=_provider(provider_id),
    )
    assert rejected.status_code == 200, rejected.text
    rid: str = referral["id"]
    return rid


def _provider(provider_id: str) -> dict[str, str]:
    return auth("provider", provider_id=provider_id)


async def _referral(client: AsyncClient, rid: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/v1/referrals/{rid}", headers=POST)).json()
    return body


async def test_retention_erases_exactly_the_closed_referrals_past_their_date(
    client: AsyncClient, api: Api
) -> None:
    """JFS 1.33: closed referrals of a contract whose Records Retention End Date is before
    ``as_of`` are erased; open ones, other contracts' and contracts without a date are not;
    a second run erases nothing more."""
    await api.set_today("2026-03-02")
    ended = await api.create_contract(provider_id="P100", records_retention_end_date="2026-05-31")
    assert ended["records_retention_end_date"] == "2026-05-31"
    await api.create_contract(provider_id="P200", records_retention_end_date="2026-06-01")
    await api.create_contract(provider_id="P300")
    due = await _closed(client, "AB000001C", "P100")
    on_the_day = await _closed(client, "AB000003C", "P200")
    no_date = await _closed(client, "AB000004C", "P300")
    # Still open on 1 June: made within its 30 days before auto DNA would close it (JFS 3.40,
    # which holds on every read, so an older open referral would be closed, then erased).
    await api.set_today("2026-05-20")
    still_open = (await create_referral(client, nino="AB000002C", provider_id="P100"))["id"]
    await api.set_today("2026-06-01")

    first = await _retention(client)
    assert first["erased"] == 1
    assert first["as_of"] == "2026-06-01"
    assert (await _referral(client, due))["participant"] is None
    assert (await _referral(client, due))["erased_at"] is not None
    for kept in (still_open, on_the_day, no_date):
        assert (await _referral(client, kept))["participant"] is not None, kept
    history = (await client.get(f"/v1/referrals/{due}/history", headers=JCP)).json()["items"]
    assert history[-1]["type"] == "erased"
    assert history[-1]["actor"]["role"] == "system"
    assert history[1]["note"] is None
    assert history[1]["reason"] == "other"
    assert (await _retention(client))["erased"] == 0

    runs = (await client.get("/v1/jobs/runs", headers=ADMIN)).json()["items"]
    assert [(r["job"], r["changed"]) for r in runs] == [("retention", 0), ("retention", 1)]


async def test_retention_as_of_may_not_be_in_the_future(client: AsyncClient, api: Api) -> None:
    await api.set_today("2026-03-02")
    response = await client.post(
        "/v1/jobs/retention/runs", headers=ADMIN, json={"as_of": "2026-03-03"}
    )
    assert_problem(response, 422, "date-out-of-range")
    refused = await client.post("/v1/jobs/retention/runs", headers=POST, json={})
    assert_problem(refused, 403, "forbidden")


async def test_concurrent_retention_runs_erase_each_referral_once(
    settings: Settings, client: AsyncClient, api: Api
) -> None:
    """Exactly once across replicas: two app instances racing each erase a share, every
    referral once, with one ``erased`` event."""
    await api.set_today("2026-03-02")
    await api.create_contract(records_retention_end_date="2026-03-31")
    ids = [await _closed(client, f"AB{i:06d}C", "P100") for i in range(1, 9)]
    await api.set_today("2026-04-02")
    other: FastAPI = create_app(settings)
    try:
        async with AsyncClient(
            transport=ASGITransport(app=other), base_url="http://replica.test"
        ) as second:
            results = await asyncio.gather(
                _retention(client), _retention(second), _retention(client)
            )
    finally:
        await other.state.engine.dispose()
    assert sum(r["erased"] for r in results) == len(ids)
    for rid in ids:
        history = (await client.get(f"/v1/referrals/{rid}/history", headers=POST)).json()
        assert [e["type"] for e in history["items"]].count("erased") == 1


def test_cli_runs_retention(settings: Settings) -> None:
    """`prap jobs run retention --as-of`, for cron or a Kubernetes CronJob."""
    env = os.environ | {
        "PRAP_DATABASE_URL": settings.database_url,
        "PRAP_SANDBOX": "1",
        "PRAP_JWT_SECRET": "x",
    }
    output = subprocess.run(
        [sys.executable, "-m", "app.cli", "jobs", "run", "retention", "--as-of", "2026-01-05"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(output.stdout)
    assert result["job"] == "retention"
    assert result["changed"] == 0
