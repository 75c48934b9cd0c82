"""The console over HTTP (httpx against the real app and database): sign-in, cookie, CSRF,
tenancy, and that each form calls the API's own service (issue 17)."""

from __future__ import annotations

import re

from httpx import ASGITransport, AsyncClient, Response

from app.console.forms import ACTION_BODIES
from app.core.settings import Settings
from app.main import create_app
from app.referrals.transitions import HTTP_ACTIONS
from tests.helpers import (
    OTHER_PROVIDER,
    POST,
    PROVIDER_A,
    PROVIDER_B,
    Api,
    act,
    auth,
    create_referral,
)

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def csrf_of(page: Response) -> str:
    match = _CSRF.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


async def _referral(api: Api, client: AsyncClient, **kwargs: object) -> dict[str, object]:
    await api.create_contract(programme="SES")
    await api.set_clock("2026-03-02T09:00:00Z")
    return await create_referral(client, programme="SES", **kwargs)  # type: ignore[arg-type]


def test_every_http_action_has_a_console_form() -> None:
    """domain.md §4: a button for exactly each of the referral's allowed_actions."""
    assert set(ACTION_BODIES) == set(HTTP_ACTIONS)


async def test_console_is_not_in_the_openapi_document(client: AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


async def test_signed_out_visitor_goes_to_the_sandbox_sign_in(client: AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/sign-in"


async def test_sandbox_sign_in_mints_a_token_in_an_httponly_lax_cookie(
    client: AsyncClient,
) -> None:
    """Issue 17, sign-in: HttpOnly, SameSite=Lax; not Secure in the sandbox (plain http)."""
    page = await client.get("/console/sign-in")
    assert page.status_code == 200
    response = await client.post(
        "/console/sign-in",
        data={
            "csrf_token": csrf_of(page),
            "role": "provider",
            "sub": "ann",
            "provider_id": "P100",
            "scope-referrals": "1",
        },
    )
    assert response.status_code == 303, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("prap_console=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "samesite=lax" in cookie.lower()
    assert "Path=/console" in cookie
    home = await client.get("/console")
    assert home.status_code == 200
    assert "Your worklist" in home.text
    assert home.headers["cache-control"] == "no-store"


async def test_sign_in_without_its_csrf_token_is_refused(client: AsyncClient) -> None:
    await client.get("/console/sign-in")
    response = await client.post(
        "/console/sign-in", data={"role": "admin", "sub": "mallory", "csrf_token": "00"}
    )
    assert response.status_code == 403
    assert "prap_console=" not in response.headers.get("set-cookie", "")


async def test_pages_accept_a_bearer_token_as_the_api_does(client: AsyncClient) -> None:
    """Behind the authenticating proxy the token arrives in Authorization: Bearer."""
    response = await client.get("/console", headers=POST)
    assert response.status_code == 200
    assert "Payment runs" in response.text


async def test_an_invalid_token_is_not_signed_in(client: AsyncClient) -> None:
    response = await client.get("/console", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 303


async def test_another_providers_referral_is_a_404_page(api: Api, client: AsyncClient) -> None:
    """domain.md §1: a provider never learns that another provider's referral exists."""
    referral = await _referral(api, client)
    theirs = await client.get(f"/console/referrals/{referral['id']}", headers=PROVIDER_B)
    missing = await client.get("/console/referrals/no-such-id", headers=PROVIDER_B)
    assert theirs.status_code == missing.status_code == 404
    assert "Page not found" in theirs.text
    assert "Ada" not in theirs.text
    assert theirs.headers["content-type"].startswith("text/html")


async def test_a_form_without_the_csrf_token_changes_nothing(api: Api, client: AsyncClient) -> None:
    referral = await _referral(api, client)
    response = await client.post(
        f"/console/referrals/{referral['id']}/actions/accept",
        headers=PROVIDER_A,
        data={"version": "1"},
    )
    assert response.status_code == 403
    after = await client.get(f"/v1/referrals/{referral['id']}", headers=PROVIDER_A)
    assert after.json()["status"] == "referred"


async def test_the_referral_page_offers_exactly_its_allowed_actions(
    api: Api, client: AsyncClient
) -> None:
    referral = await _referral(api, client, mappa=True, with_contact_details=False)
    page = await client.get(f"/console/referrals/{referral['id']}", headers=PROVIDER_A)
    assert page.status_code == 200
    offered = set(re.findall(r"/actions/([a-z-]+)\"", page.text))
    api_view = await client.get(f"/v1/referrals/{referral['id']}", headers=PROVIDER_A)
    assert offered == set(api_view.json()["allowed_actions"]) == {"acknowledge", "accept", "reject"}
    # SES 3.37: the MAPPA notice is on the page, as a notice (not escaped markup).
    assert '<p class="govuk-notification-banner__heading">MAPPA case' in page.text
    assert "&lt;p" not in page.text


async def test_accepting_through_the_console_is_the_apis_accept(
    api: Api, client: AsyncClient
) -> None:
    """JFS 3.08: the form calls the same service; one accepted event in the history."""
    referral = await _referral(api, client)
    page = await client.get(f"/console/referrals/{referral['id']}", headers=PROVIDER_A)
    response = await client.post(
        f"/console/referrals/{referral['id']}/actions/accept",
        headers=PROVIDER_A,
        data={"csrf_token": csrf_of(page), "version": str(referral["version"])},
    )
    assert response.status_code == 303
    history = await client.get(f"/v1/referrals/{referral['id']}/history", headers=PROVIDER_A)
    assert [e["type"] for e in history.json()["items"]] == ["created", "accepted"]


async def test_a_refused_start_shows_the_problem_in_an_error_summary(
    api: Api, client: AsyncClient
) -> None:
    """JFS 3.27: a start date in the future is date-out-of-range, shown, nothing changed."""
    referral = await _referral(api, client)
    assert (await act(client, str(referral["id"]), "accept")).status_code == 200
    page = await client.get(f"/console/referrals/{referral['id']}", headers=PROVIDER_A)
    response = await client.post(
        f"/console/referrals/{referral['id']}/actions/start",
        headers=PROVIDER_A,
        data={
            "csrf_token": csrf_of(page),
            "version": "2",
            "start_date-day": "9",
            "start_date-month": "3",
            "start_date-year": "2026",
        },
    )
    assert response.status_code == 422
    assert "govuk-error-summary" in response.text
    assert "date-out-of-range" in response.text
    after = await client.get(f"/v1/referrals/{referral['id']}", headers=PROVIDER_A)
    assert after.json()["status"] == "accepted"


async def test_a_missing_field_is_an_error_beside_it(api: Api, client: AsyncClient) -> None:
    referral = await _referral(api, client)
    page = await client.get(f"/console/referrals/{referral['id']}", headers=PROVIDER_A)
    response = await client.post(
        f"/console/referrals/{referral['id']}/actions/reject",
        headers=PROVIDER_A,
        data={"csrf_token": csrf_of(page), "version": "1"},
    )
    assert response.status_code == 422
    assert 'href="#reject-reason"' in response.text
    assert "Choose reason" in response.text


async def test_a_stale_form_is_refused_as_the_api_refuses_a_stale_if_match(
    api: Api, client: AsyncClient
) -> None:
    referral = await _referral(api, client)
    page = await client.get(f"/console/referrals/{referral['id']}", headers=PROVIDER_A)
    assert (await act(client, str(referral["id"]), "acknowledge")).status_code == 200
    response = await client.post(
        f"/console/referrals/{referral['id']}/actions/accept",
        headers=PROVIDER_A,
        data={"csrf_token": csrf_of(page), "version": "1"},
    )
    assert response.status_code == 412
    assert "precondition-failed" in response.text


async def test_only_the_support_team_sees_claims_and_payment_runs(client: AsyncClient) -> None:
    assert (await client.get("/console/claims", headers=PROVIDER_A)).status_code == 403
    assert (await client.get("/console/claims", headers=POST)).status_code == 200
    assert (await client.get("/console/payment-runs", headers=POST)).status_code == 200
    provider_run = await client.post(
        "/console/payment-runs", headers=auth("provider", provider_id=OTHER_PROVIDER)
    )
    assert provider_run.status_code == 403


async def test_a_payment_run_for_a_later_month_is_refused_on_the_form(
    api: Api, client: AsyncClient
) -> None:
    await api.set_clock("2026-03-02T09:00:00Z")
    page = await client.get("/console/payment-runs", headers=POST)
    response = await client.post(
        "/console/payment-runs",
        headers=POST,
        data={"csrf_token": csrf_of(page), "month": "2026-04"},
    )
    assert response.status_code == 422
    assert "govuk-error-summary" in response.text
    runs = await client.get("/v1/payment-runs", headers=POST)
    assert runs.json()["items"] == []


async def test_performance_page_has_a_chart_and_the_same_figures_as_a_table(
    api: Api, client: AsyncClient
) -> None:
    contract = await api.create_contract(programme="JFS")
    await api.set_clock("2026-03-02T09:00:00Z")
    page = await client.get(f"/console/contracts/{contract['id']}", headers=POST)
    assert page.status_code == 200
    assert "<svg" in page.text
    assert 'id="credits-table"' in page.text
    csv = await client.get(f"/console/contracts/{contract['id']}/service-credits.csv", headers=POST)
    assert csv.status_code == 200
    assert csv.text.startswith("contract_id,month,standard")


async def test_outside_the_sandbox_there_is_no_sign_in_page_and_no_cookie(
    settings: Settings,
) -> None:
    """Production: the authenticating proxy signs people in; a page without a token is 401."""
    application = create_app(settings.model_copy(update={"sandbox": False}))
    try:
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://prap.test") as client:
            page = await client.get("/console")
            assert page.status_code == 401
            assert page.headers["www-authenticate"] == "Bearer"
            sign_in = await client.get("/console/sign-in")
            assert sign_in.status_code == 404
            assert "set-cookie" not in sign_in.headers
            assert (await client.get("/console", headers=POST)).status_code == 200
    finally:
        await application.state.engine.dispose()


async def test_referral_pages_admit_the_roles_and_scopes_the_api_admits(
    api: Api, client: AsyncClient
) -> None:
    """api-contract.md: getReferral is for jcp, post and providers with a scope; not admin."""
    referral = await _referral(api, client)
    path = f"/console/referrals/{referral['id']}"
    assert (await client.get(path, headers=auth("admin"))).status_code == 403
    no_scope = auth("provider", provider_id="P100", scopes=())
    assert (await client.get(path, headers=no_scope)).status_code == 403
    assert (await client.get(path, headers=POST)).status_code == 200
    assert (await client.get(path, headers=auth("jcp"))).status_code == 200
