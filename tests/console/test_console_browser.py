"""The console's journeys end to end in headless Chromium against a running server, on the
suite's database (SQLite, or PostgreSQL with PRAP_TEST_DATABASE_URL): no console errors, no
serious accessibility violations (axe-core), and the README's screenshots (issue 17)."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from tests.claim_support import CLERK_A
from tests.console.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    accessible,
    missing_prerequisite,
    run_server,
)
from tests.helpers import OTHER_PROVIDER, POST, TEST_SECRET, Api, act, create_referral

_missing = missing_prerequisite()
pytestmark = pytest.mark.skipif(_missing is not None, reason=f"browser tests: {_missing}")

# The sandbox clock for every journey: Wednesday 4 March 2026, 10:00 UTC.
TODAY = "2026-03-04"


@pytest.fixture(scope="module")
def server(database_url: str) -> Iterator[str]:
    log = Path(tempfile.mkdtemp(prefix="prap-console-")) / "server.log"
    yield from run_server(database_url, TEST_SECRET, log)


@pytest.fixture
async def page(server: str) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        # bypass_csp: axe-core is injected by the test, not served by the app.
        context = await browser.new_context(
            base_url=server, viewport={"width": 1100, "height": 900}, bypass_csp=True
        )
        tab = await context.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        tab.console_errors = errors
        yield tab
        await context.close()
        await browser.close()
        # Expected error pages (404, 422) are logged by Chromium as failed loads; nothing else.
        unexpected = [e for e in errors if "the server responded with a status of 4" not in e]
        assert unexpected == []


async def sign_in(page: Any, role_label: str, sub: str, provider_id: str = "") -> None:
    await page.goto("/console")
    await page.get_by_role("radio", name=role_label).check()
    await page.get_by_label("Your name or user id").fill(sub)
    if provider_id:
        await page.get_by_label("Provider id (provider staff only)").fill(provider_id)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/console")


def nav(page: Any, name: str) -> Any:
    return page.get_by_role("navigation", name="Console").get_by_role("link", name=name)


async def downloaded(page: Any, link: str) -> str:
    async with page.expect_download() as download_info:
        await page.locator(link).click()
    download = await download_info.value
    return await download_text(download)


async def download_text(download: Any) -> str:
    path = await download.path()
    return await asyncio.to_thread(Path(path).read_text)


async def _ses_referral(client: AsyncClient, nino: str, **kwargs: Any) -> str:
    referral = await create_referral(client, programme="SES", nino=nino, **kwargs)
    return str(referral["id"])


async def seed_worklist(api: Api, client: AsyncClient) -> dict[str, str]:
    """A provider's day: acknowledgements due (overdue, today, tomorrow), a MAPPA referral
    nearing its automatic did-not-attend, and backed-out starts (one overdue)."""
    await api.create_contract(programme="SES", start_date="2026-01-01")
    await api.create_contract(programme="SES", start_date="2026-01-01", provider_id=OTHER_PROVIDER)
    ids: dict[str, str] = {}
    await api.set_clock("2026-02-06T10:00:00Z")
    ids["mappa"] = await _ses_referral(client, "AB123456C", mappa=True, with_contact_details=False)
    assert (await act(client, ids["mappa"], "accept")).status_code == 200
    await api.set_clock("2026-02-09T10:00:00Z")
    for key, nino in (("backed_out_late", "AB123457C"), ("backed_out", "AB123458C")):
        ids[key] = await _ses_referral(client, nino)
        assert (await act(client, ids[key], "accept")).status_code == 200
        started = await act(client, ids[key], "start", {"start_date": "2026-02-09"})
        assert started.status_code == 200
    await api.set_clock("2026-03-02T10:00:00Z")
    ids["overdue"] = await _ses_referral(client, "AB123459C")
    ids["theirs"] = await _ses_referral(client, "AB123460C", provider_id=OTHER_PROVIDER)
    await api.set_clock("2026-03-03T09:00:00Z")
    ids["today"] = await _ses_referral(client, "AB123461C")
    back_out = {"reason": "Start recorded in error"}
    backed_out = await act(client, ids["backed_out_late"], "back-out", back_out, headers=POST)
    assert backed_out.is_success
    await api.set_clock("2026-03-04T09:30:00Z")
    ids["tomorrow"] = await _ses_referral(client, "AB123462C")
    assert (await act(client, ids["backed_out"], "back-out", back_out, headers=POST)).is_success
    await api.set_clock(f"{TODAY}T10:00:00Z")
    return ids


async def test_provider_worklist_and_referral_actions(
    page: Any, api: Api, client: AsyncClient
) -> None:
    """JFS 3.07 (acknowledgement deadlines), 3.40 (auto DNA), SES 3.15 / JFS 3.37 (back-outs),
    SES 3.37 (MAPPA notice), and actions with their refusals as error summaries."""
    ids = await seed_worklist(api, client)
    await page.goto("/console")
    await page.wait_for_url("**/console/sign-in")
    await accessible(page, "sign-in")
    await sign_in(page, "Provider staff", "delivery-ann", "P100")

    assert await page.get_by_text("Awaiting acknowledgement (3)").is_visible()
    for tag in ("Overdue", "Due today", "Due tomorrow"):
        assert await page.locator(".govuk-tag", has_text=tag).first.is_visible()
    assert await page.get_by_text("Nearing automatic did not attend (1)").is_visible()
    assert await page.get_by_text("Backed-out starts awaiting did not start (1)").is_visible()
    assert await page.get_by_text("not cancelled within 24 hours (1)").is_visible()
    await accessible(page, "worklist")

    await page.get_by_role("link", name=ids["today"]).click()
    await page.get_by_role("button", name="Accept the referral").click()
    assert await page.get_by_text("Done: Accept the referral.").is_visible()
    await page.locator(".govuk-details__summary", has_text="Record the start").click()
    await page.locator("#start-start_date-day").fill("5")
    await page.locator("#start-start_date-month").fill("3")
    await page.locator("#start-start_date-year").fill("2026")
    await page.locator("#start-submit").click()
    summary = page.locator(".govuk-error-summary")
    assert await summary.is_visible()
    assert "Start date is after 2026-03-04" in await summary.inner_text()
    assert await page.locator("#start-start_date-error").is_visible()
    await accessible(page, "referral-error")
    await page.locator("#start-start_date-day").fill("4")
    await page.locator("#start-submit").click()
    assert await page.get_by_text("Done: Record the start.").is_visible()
    assert await page.locator(".govuk-tag", has_text="Started").is_visible()
    await accessible(page, "referral")

    await page.goto(f"/console/referrals/{ids['mappa']}")
    notice = page.locator(".prap-mappa .govuk-notification-banner__heading")
    assert "nominated officer" in await notice.inner_text()
    await accessible(page, "referral-mappa")

    # domain.md §1: another provider's referral is a 404 page, as for no referral at all.
    response = await page.goto(f"/console/referrals/{ids['theirs']}")
    assert response.status == 404
    assert await page.get_by_role("heading", name="Page not found").is_visible()
    await accessible(page, "not-found")


async def seed_claims(api: Api, client: AsyncClient) -> dict[str, str]:
    await api.create_contract(programme="SES", start_date="2026-01-01")
    await api.set_clock("2026-02-09T10:00:00Z")
    ids: dict[str, str] = {}
    for key, nino in (("valid", "AB123456C"), ("invalid", "AB123457C"), ("error", "AB123458C")):
        ids[key] = await _ses_referral(client, nino)
        assert (await act(client, ids[key], "accept")).status_code == 200
        assert (await act(client, ids[key], "start", {"start_date": "2026-02-09"})).is_success
    await api.set_clock(f"{TODAY}T10:00:00Z")
    for key in ("valid", "invalid"):
        response = await client.post(
            "/v1/claims",
            headers=CLERK_A,
            json={"referral_id": ids[key], "claim_type": "attachment"},
        )
        assert response.status_code == 201, response.text
        ids[f"{key}_claim"] = response.json()["id"]
    return ids


async def test_support_team_claims_back_out_and_payment_run(
    page: Any, api: Api, client: AsyncClient
) -> None:
    """domain.md §8: validate and reject claims, back out a start (SES 3.15), make a payment
    run, see its lines, download the remittance."""
    ids = await seed_claims(api, client)
    await sign_in(page, "DWP support team (PRaP Operational Support Team)", "ost-olu")

    await nav(page, "Claims").click()
    await accessible(page, "claims")
    await page.locator(f"#validate-{ids['valid_claim']}").click()
    assert await page.get_by_text("The claim was validated.").is_visible()
    await page.locator(f"#reject-{ids['invalid_claim']}").click()
    assert await page.locator(".govuk-error-summary").is_visible()
    await page.locator(f"#reason-{ids['invalid_claim']}").fill("No evidence of the start")
    await page.locator(f"#reject-{ids['invalid_claim']}").click()
    assert await page.get_by_text("The claim was rejected.").is_visible()

    await nav(page, "Home").click()
    await page.get_by_label("Referral id").fill(ids["error"])
    await page.get_by_role("button", name="Find").click()
    await page.locator(".govuk-details__summary", has_text="Back out the start").click()
    await page.locator("#back-out-reason").fill("Start recorded against the wrong person")
    await page.locator("#back-out-submit").click()
    assert await page.get_by_text("Done: Back out the start.").is_visible()
    assert await page.locator(".govuk-tag", has_text="Accepted").is_visible()

    await nav(page, "Payment runs").click()
    await page.get_by_label("Month").fill("2026-03")
    await page.get_by_role("button", name="Make the payment run").click()
    await page.wait_for_url("**/console/payment-runs/*")
    lines = page.locator("#lines-claim")
    assert await lines.get_by_text(ids["valid_claim"]).is_visible()
    await accessible(page, "payment-run")
    content = await downloaded(page, "#remittance")
    assert content.startswith("run_id,run_month,kind")
    assert ids["valid_claim"] in content
    assert ids["invalid_claim"] not in content


async def seed_performance(api: Api, client: AsyncClient) -> str:
    """JFS 7.44: January's CSS 2 is red (one of two outcomes recorded in time); February green."""
    contract = await api.create_contract(programme="JFS", start_date="2025-01-01")
    await api.set_clock("2026-01-05T10:00:00Z")
    met = await create_referral(client, programme="JFS", nino="AB123456C")
    await create_referral(client, programme="JFS", nino="AB123457C")
    await api.set_clock("2026-01-06T10:00:00Z")
    assert (await act(client, met["id"], "accept")).is_success
    assert (await act(client, met["id"], "start", {"start_date": "2026-01-06"})).is_success
    await api.set_clock("2026-02-02T10:00:00Z")
    february = await create_referral(client, programme="JFS", nino="AB123458C")
    assert (await act(client, february["id"], "accept")).is_success
    assert (await act(client, february["id"], "did-not-attend", {})).is_success
    await api.set_clock(f"{TODAY}T10:00:00Z")
    return str(contract["id"])


async def test_performance_chart_table_and_mi(page: Any, api: Api, client: AsyncClient) -> None:
    """JFS 6.07-6.10, 7.44: RAG and deductions as a server-side SVG and a table; MI CSV."""
    contract_id = await seed_performance(api, client)
    await sign_in(page, "Service operator (performance)", "perf-pat")
    await nav(page, "Performance").click()
    await page.get_by_role("link", name=contract_id).click()
    assert await page.locator("svg.prap-chart").is_visible()
    row = page.locator("#credits-table tr", has_text="2026-01")
    assert "Red" in await row.inner_text()
    await accessible(page, "performance")
    assert (await downloaded(page, "#mi-csv")).startswith("contract_id,month,standard")
