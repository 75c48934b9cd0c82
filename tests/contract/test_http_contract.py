"""The HTTP details of the contract (issue 15): the error catalogue, 415, strong ETags,
If-None-Match, HEAD, self-hosted docs, versioning. All over HTTP against the real app."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from httpx import AsyncClient

from app.core.openapi import API_VERSION
from app.core.problems import catalogue_markdown, catalogue_section, problem_catalogue
from app.core.versions import fingerprint, recorded_versions
from app.referrals.states import CallerAction
from app.referrals.transitions import HTTP_ACTIONS
from tests.claim_support import CLERK_A, claim_ok, contract, started_referral
from tests.helpers import JCP, PROVIDER_A, Api, act, assert_problem, create_referral, referral_body

ROOT = Path(__file__).resolve().parent.parent.parent


# --- the error catalogue ------------------------------------------------------------------


async def test_problem_type_is_the_catalogue_entry_the_service_serves(client: AsyncClient) -> None:
    """api-contract.md Errors: `type` is `/problems/{code}`, served as HTML by default and as
    `{code, title, status, description}` with `Accept: application/json`."""
    problem = assert_problem(await client.get("/v1/referrals/nope", headers=JCP), 404, "not-found")
    assert problem["type"] == "/problems/not-found"
    page = await client.get(problem["type"])
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "Not found" in page.text
    entry = await client.get(problem["type"], headers={"Accept": "application/json"})
    assert entry.status_code == 200
    assert set(entry.json()) == {"code", "title", "status", "description"}
    assert entry.json()["code"] == "not-found"
    assert entry.json()["status"] == 404


async def test_every_code_of_the_contract_is_in_the_catalogue(client: AsyncClient) -> None:
    listed = (await client.get("/problems", headers={"Accept": "application/json"})).json()
    codes = {item["code"]: item["status"] for item in listed["items"]}
    contract_codes = {
        "validation-error": 422,
        "unauthenticated": 401,
        "forbidden": 403,
        "not-found": 404,
        "invalid-transition": 409,
        "acknowledgement-window-closed": 409,
        "open-referral-exists": 409,
        "re-referral-not-allowed": 409,
        "duplicate-claim": 409,
        "idempotency-key-in-use": 409,
        "precondition-failed": 412,
        "special-customer-record": 422,
        "mappa-contact-details": 422,
        "no-contract": 422,
        "end-code-automated-only": 422,
        "policy-reference-required": 422,
        "date-out-of-range": 422,
        "claim-not-eligible": 422,
        "idempotency-key-reused": 422,
        "segregation-of-duties": 403,
        "payload-too-large": 413,
        "unsupported-media-type": 415,
        "service-unavailable": 503,
    }
    assert contract_codes.items() <= codes.items()
    for code in codes:
        assert (await client.get(f"/problems/{code}")).status_code == 200
    assert_problem(await client.get("/problems/no-such-code"), 404, "not-found")


def test_readme_table_is_generated_from_the_catalogue() -> None:
    """The README's table of codes is the catalogue's (run `prap problems`)."""
    readme = (ROOT / "README.md").read_text()
    assert catalogue_section(readme) == catalogue_markdown()
    assert "domain.md" not in "".join(entry.description for entry in problem_catalogue())


async def test_each_operation_lists_exactly_its_codes(client: AsyncClient) -> None:
    """Each operation's problem `code` is a named enum of the codes its responses name; only
    operations with a body can answer `special-customer-record`."""
    document = (await client.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    for item in document["paths"].values():
        for operation in item.values():
            name = operation["operationId"][0].upper() + operation["operationId"][1:]
            codes = schemas[f"{name}ProblemCode"]["enum"]
            declared = [
                c
                for status, response in operation["responses"].items()
                if int(status) >= 400
                for c in re.findall(r"`([a-z-]+)`", response["description"])
            ]
            assert sorted(set(declared)) == sorted(codes), operation["operationId"]
            has_body = "requestBody" in operation
            assert ("special-customer-record" in codes) == has_body, operation["operationId"]


# --- 415, in its place in the order of checks ---------------------------------------------


async def test_non_json_body_is_415_after_auth_and_before_validation(
    client: AsyncClient, api: Api
) -> None:
    """api-contract.md order of checks: 401, 403, then 415, then 422."""
    await api.create_contract()
    text = {"Content-Type": "text/plain"}
    body = json.dumps(referral_body()).encode()
    assert_problem(
        await client.post("/v1/referrals", headers=text, content=body), 401, "unauthenticated"
    )
    assert_problem(
        await client.post("/v1/referrals", headers=PROVIDER_A | text, content=body),
        403,
        "forbidden",
    )
    assert_problem(
        await client.post("/v1/referrals", headers=JCP | text, content=b"not json at all"),
        415,
        "unsupported-media-type",
    )
    assert_problem(
        await client.post("/v1/referrals", headers=JCP, content=body), 415, "unsupported-media-type"
    )
    listed = await client.get("/v1/referrals", headers=JCP)
    assert listed.json()["items"] == []
    # JSON-typed media types are JSON; a request without a body needs no Content-Type.
    created = await client.post(
        "/v1/referrals", headers=JCP | {"Content-Type": "application/vnd.prap+json"}, content=body
    )
    assert created.status_code == 201, created.text
    bodyless = await client.post(
        f"/v1/referrals/{created.json()['id']}/acknowledge", headers=PROVIDER_A
    )
    assert bodyless.status_code == 200, bodyless.text


async def test_sandbox_without_a_token_also_answers_415(client: AsyncClient) -> None:
    response = await client.put(
        "/v1/sandbox/clock",
        headers={"Content-Type": "text/plain"},
        content=b'{"now": "2026-03-02T09:00:00Z"}',
    )
    assert_problem(response, 415, "unsupported-media-type")


# --- ETags: strong If-Match, If-None-Match, HEAD ------------------------------------------


async def test_weak_if_match_never_matches(client: AsyncClient, api: Api) -> None:
    """RFC 9110 13.1.1: If-Match uses the strong comparison, so `W/"1"` is not `"1"`."""
    await api.create_contract()
    referral = await create_referral(client)
    response = await client.post(
        f"/v1/referrals/{referral['id']}/acknowledge",
        headers=PROVIDER_A | {"If-Match": 'W/"1"'},
        json={},
    )
    assert_problem(response, 412, "precondition-failed")
    strong = await client.post(
        f"/v1/referrals/{referral['id']}/acknowledge",
        headers=PROVIDER_A | {"If-Match": '"1"'},
        json={},
    )
    assert strong.status_code == 200


async def test_if_none_match_on_a_referral_is_304_until_it_changes(
    client: AsyncClient, api: Api
) -> None:
    await api.create_contract()
    referral = await create_referral(client)
    path = f"/v1/referrals/{referral['id']}"
    first = await client.get(path, headers=JCP)
    tag = first.headers["etag"]
    for held in (tag, f"W/{tag}", f'"7", {tag}', "*"):
        same = await client.get(path, headers=JCP | {"If-None-Match": held})
        assert same.status_code == 304, held
        assert same.content == b""
        assert same.headers["etag"] == tag
    assert (await act(client, referral["id"], "acknowledge")).status_code == 200
    changed = await client.get(path, headers=JCP | {"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json()["version"] == 2


async def test_if_none_match_on_a_claim(client: AsyncClient, api: Api) -> None:
    await api.set_today("2026-03-02")
    await contract(api, "SES")
    referral = await started_referral(client, i=1, programme="SES")
    claim = await claim_ok(client, referral["id"], "attachment")
    path = f"/v1/claims/{claim['id']}"
    tag = (await client.get(path, headers=CLERK_A)).headers["etag"]
    assert (await client.get(path, headers=CLERK_A | {"If-None-Match": tag})).status_code == 304
    stale = await client.get(path, headers=CLERK_A | {"If-None-Match": '"99"'})
    assert stale.status_code == 200


async def test_head_answers_every_get_without_a_body(client: AsyncClient, api: Api) -> None:
    await api.create_contract()
    referral = await create_referral(client)
    path = f"/v1/referrals/{referral['id']}"
    got = await client.get(path, headers=JCP)
    head = await client.head(path, headers=JCP)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == got.headers["etag"]
    assert head.headers["content-length"] == got.headers["content-length"]
    assert (await client.head("/v1/referrals", headers=JCP)).status_code == 200
    assert (await client.head(path)).status_code == 401


# --- docs and versions --------------------------------------------------------------------


async def test_docs_are_served_with_every_asset_and_nothing_from_outside(
    client: AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page.text), "an outside request"
    assets = re.findall(r"(?:src|href)=[\"']([^\"']+)[\"']", page.text)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 0
    assert "/openapi.json" in page.text
    assert (await client.get("/openapi.json")).status_code == 200


async def test_document_changes_come_with_a_new_version(client: AsyncClient) -> None:
    """The document's fingerprint (without `info.version`) is the one recorded for its
    version: changing the document without bumping the version fails here."""
    document = (await client.get("/openapi.json")).json()
    version = document["info"]["version"]
    assert version == API_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    versions = recorded_versions()
    assert versions.get(version) == fingerprint(document), (
        "the document changed: bump API_VERSION, run `prap openapi`, add a CHANGELOG entry"
    )
    assert len(set(versions.values())) == len(versions), "two versions, one document"
    assert f"## {version}" in (ROOT / "CHANGELOG.md").read_text()


def test_caller_actions_are_the_http_actions_of_the_transition_table() -> None:
    """`allowed_actions` lists only what a caller can send: not the system's auto actions."""
    assert {str(a) for a in CallerAction} == {str(a) for a in HTTP_ACTIONS}


@pytest.mark.parametrize("path", ["/v1/referrals", "/problems"])
async def test_every_response_has_a_request_id(client: AsyncClient, path: str) -> None:
    assert (await client.get(path, headers=JCP)).headers["x-request-id"]


def test_the_document_cites_the_guidance_never_internal_files() -> None:
    """Integrators have the DWP guidance, not our working files: descriptions cite it by name
    and paragraph (issue "An API a CRM team can integrate alone")."""
    document = (ROOT / "openapi" / "openapi.json").read_text()
    for internal in ("domain.md", "api-contract.md", "style.md", "seeds/"):
        assert internal not in document, internal
