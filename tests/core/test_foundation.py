"""Health, errors as problems, the sandbox, programmes and contracts."""

from __future__ import annotations

from httpx import ASGITransport, AsyncClient

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import (
    ADMIN,
    JCP,
    OTHER_PROVIDER,
    POST,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    assert_problem,
)


async def test_health_and_readiness_need_no_token(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}


async def test_readiness_fails_without_a_database(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"database_url": "postgresql+asyncpg://nobody:x@127.0.0.1:1/none"}
    )
    app = create_app(broken)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        assert_problem(await client.get("/readyz"), 503, "service-unavailable")
    await app.state.engine.dispose()


async def test_metrics_answer_only_an_admin_token(client: AsyncClient) -> None:
    """api-contract.md, Running it: /metrics answers only to an admin token, else 401/403."""
    await client.get("/healthz")
    assert_problem(await client.get("/metrics"), 401, "unauthenticated")
    assert_problem(await client.get("/metrics", headers=JCP), 403, "forbidden")
    response = await client.get("/metrics", headers=ADMIN)
    assert response.status_code == 200
    assert "prap_http_requests_total" in response.text


async def test_request_id_is_echoed_or_minted(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    minted = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert minted.headers["x-request-id"] != "bad id with spaces"


async def test_unknown_route_and_method_are_problems(client: AsyncClient) -> None:
    assert_problem(await client.get("/v1/nothing-here"), 404, "not-found")
    assert_problem(await client.delete("/v1/programmes", headers=ADMIN), 405, "method-not-allowed")


async def test_malformed_json_is_a_validation_problem(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/contracts",
        headers={**ADMIN, "Content-Type": "application/json"},
        content=b'{"provider_id": "P1", ',
    )
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"][0]["field"] == "body"


async def test_validation_problem_names_fields_but_never_echoes_values(client: AsyncClient) -> None:
    secret = "AB 123456C SECRET"
    response = await client.post(
        "/v1/contracts",
        headers=ADMIN,
        json={"provider_id": secret, "programme": "NOPE", "start_date": "2026-01-01"},
    )
    body = assert_problem(response, 422, "validation-error")
    fields = {e["field"] for e in body["errors"]}
    assert {"provider_id", "programme", "end_date", "monthly_service_fee_pence"} <= fields
    assert secret not in response.text
    assert "NOPE" not in response.text


async def test_sandbox_clock_sets_today(client: AsyncClient, api: Api) -> None:
    response = await client.put("/v1/sandbox/clock", json={"now": "2026-03-02T23:30:00Z"})
    assert response.status_code == 200
    assert response.json()["today"] == "2026-03-02"
    # Europe/London: 23:30 UTC in summer time is the next UK day.
    response = await client.put("/v1/sandbox/clock", json={"now": "2026-06-01T23:30:00Z"})
    assert response.json()["today"] == "2026-06-02"
    assert (await client.delete("/v1/sandbox/clock")).status_code == 204
    contract = await api.create_contract()
    assert contract["created_at"].startswith("20")


async def test_sandbox_clock_stamps_records(client: AsyncClient, api: Api) -> None:
    await api.set_clock("2026-03-02T09:00:00Z")
    contract = await api.create_contract()
    assert contract["created_at"].startswith("2026-03-02T09:00:00")


async def test_sandbox_clock_needs_an_aware_instant(client: AsyncClient) -> None:
    response = await client.put("/v1/sandbox/clock", json={"now": "2026-03-02T09:00:00"})
    assert_problem(response, 422, "validation-error")


async def test_sandbox_tokens_work(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/sandbox/tokens",
        json={"sub": "harness", "role": "provider", "provider_id": "P100", "scope": "referrals"},
    )
    assert response.status_code == 200
    token = response.json()["access_token"]
    assert response.json()["token_type"] == "bearer"
    listed = await client.get("/v1/contracts", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    missing = await client.post("/v1/sandbox/tokens", json={"sub": "x", "role": "provider"})
    assert_problem(missing, 422, "validation-error")


async def test_sandbox_routes_are_404_outside_the_sandbox(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"sandbox": False}))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
        assert_problem(
            await client.put("/v1/sandbox/clock", json={"now": "2026-03-02T09:00:00Z"}),
            404,
            "not-found",
        )
        assert_problem(await client.delete("/v1/sandbox/clock"), 404, "not-found")
        assert_problem(
            await client.post("/v1/sandbox/tokens", json={"sub": "x", "role": "admin"}),
            404,
            "not-found",
        )
    await app.state.engine.dispose()


async def test_programmes_catalogue(client: AsyncClient) -> None:
    """domain.md §7: programme parameters as data."""
    response = await client.get("/v1/programmes", headers=JCP)
    assert response.status_code == 200
    programmes = {p["code"]: p for p in response.json()["items"]}
    assert set(programmes) == {"JFS", "SES", "CWP", "FND"}
    assert programmes["JFS"]["allotted_days"] == 30  # JFS 5.08
    assert programmes["CWP"]["allotted_days"] == 210  # HTW 75: 30 weeks
    assert programmes["FND"]["allotted_days"] == 364  # FND 21.22: 52 weeks
    assert programmes["JFS"]["initial_meeting_working_days"] == 8
    assert programmes["JFS"]["outcome_recorded_working_days"] == 10
    assert programmes["SES"]["max_re_referrals"] == 0  # SES 3.18
    assert programmes["JFS"]["funding"] == ["service_fee"]  # JFS 6.01
    assert programmes["SES"]["job_outcome_min_hours"] == 16


async def test_contracts_tenancy(client: AsyncClient, api: Api) -> None:
    mine = await api.create_contract()
    theirs = await api.create_contract(provider_id=OTHER_PROVIDER)
    assert (await client.get(f"/v1/contracts/{mine['id']}", headers=PROVIDER_A)).status_code == 200
    assert_problem(
        await client.get(f"/v1/contracts/{theirs['id']}", headers=PROVIDER_A), 404, "not-found"
    )
    assert_problem(
        await client.get("/v1/contracts/does-not-exist", headers=PROVIDER_A), 404, "not-found"
    )
    listed = (await client.get("/v1/contracts", headers=PROVIDER_B)).json()
    assert [c["id"] for c in listed["items"]] == [theirs["id"]]
    for reader in (POST, ADMIN):
        everything = (await client.get("/v1/contracts", headers=reader)).json()
        assert {c["id"] for c in everything["items"]} == {mine["id"], theirs["id"]}
    assert_problem(await client.get("/v1/contracts", headers=JCP), 403, "forbidden")


async def test_contract_list_pages(client: AsyncClient, api: Api) -> None:
    created = [(await api.create_contract())["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/v1/contracts", headers=POST, params=params)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(created)
    for bad in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"cursor": "!!"}):
        response = await client.get("/v1/contracts", headers=POST, params=bad)
        assert_problem(response, 422, "validation-error")


async def test_contract_period_must_be_ordered(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/contracts",
        headers=ADMIN,
        json={
            "provider_id": "P1",
            "programme": "JFS",
            "start_date": "2026-12-31",
            "end_date": "2026-01-01",
            "monthly_service_fee_pence": 1,
        },
    )
    assert_problem(response, 422, "validation-error")
