"""While the database cannot be reached, every request is a 503 ``service-unavailable`` with
``Retry-After``, never a 500, and the log has one line per failure, without a traceback
(api-contract.md, Errors). The restart of a real PostgreSQL under load is in
tests/system/test_database_restart.py."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient

from app.core.settings import Settings
from app.main import create_app
from tests.helpers import ADMIN, JCP, POST, PROVIDER_A, assert_problem, referral_body

UNREACHABLE = {
    "postgresql": "postgresql+asyncpg://nobody:x@127.0.0.1:1/none",
    "sqlite": "sqlite+aiosqlite:////nonexistent-prap-directory/prap.db",
}


@pytest.fixture(params=sorted(UNREACHABLE))
async def unreachable(
    request: pytest.FixtureRequest, settings: Settings
) -> AsyncIterator[AsyncClient]:
    broken = settings.model_copy(update={"database_url": UNREACHABLE[request.param]})
    app = create_app(broken)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://prap.test") as c:
        yield c
    await app.state.engine.dispose()


async def test_requests_answer_503_with_retry_after_while_the_database_is_down(
    unreachable: AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    requests = [
        ("GET", "/v1/referrals", JCP, None),
        ("GET", "/v1/referrals/01JZZZZZZZZZZZZZZZZZZZZZZZ", PROVIDER_A, None),
        ("GET", "/v1/events", JCP, None),
        ("POST", "/v1/referrals", JCP, referral_body()),
        ("POST", "/v1/referrals", {**JCP, "Idempotency-Key": "k-1"}, referral_body()),
        ("POST", "/v1/payment-runs", POST, {"month": "2026-03"}),
        ("POST", "/v1/jobs/auto-dna/runs", ADMIN, {}),
        ("PUT", "/v1/sandbox/clock", {}, {"now": "2026-03-02T09:00:00Z"}),
    ]
    for method, path, headers, body in requests:
        response = await unreachable.request(method, path, headers=headers, json=body)
        assert_problem(response, 503, "service-unavailable")
        assert int(response.headers["retry-after"]) > 0
    assert_problem(await unreachable.get("/readyz"), 503, "service-unavailable")
    text = caplog.text
    assert "Traceback" not in text
    unavailable = [r for r in caplog.records if "database unavailable" in r.getMessage()]
    assert len(unavailable) == len(requests)


async def test_what_needs_no_database_still_answers(unreachable: AsyncClient) -> None:
    assert (await unreachable.get("/healthz")).status_code == 200
    assert_problem(await unreachable.get("/v1/referrals"), 401, "unauthenticated")
    response = await unreachable.post(
        "/v1/referrals", json={"special_customer_record": True}, headers=JCP
    )
    assert_problem(response, 422, "special-customer-record")
