"""``prap examples``: every operation's examples, recorded from a real exchange.

A scripted referral-to-payment flow drives the real app in process (httpx ASGITransport, a
temporary SQLite database, the sandbox clock standing still), and each operation's first
request body and first answer per status are written to ``openapi/examples.json``, keyed by
operationId; the OpenAPI builder attaches them to the media types. Ids, tokens and timings
are replaced by stable stand-ins, so recording again gives the same file.

To give a new operation its examples: add its calls to ``_flow`` (``rec.call("opId", ...)``),
in the order a client would make them, and run ``prap examples`` then ``prap openapi``.
``tests/contract/test_examples.py`` fails while an operation has none.
"""

from __future__ import annotations

import asyncio
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient

from app.core.auth import Role, mint_token
from app.core.openapi import EXAMPLES_FILE
from app.core.settings import SANDBOX_JWT_SECRET, Settings

DAY = "2026-03-02"  # a Monday
NOW = f"{DAY}T09:00:00Z"
PROVIDER = "P100"

_ULID = re.compile(r"(?<![0-9A-Z])[0-9A-HJKMNP-TV-Z]{26}(?![0-9A-Z])")
# Values that differ on every run, by field name: stable stand-ins that fit their schema.
_VOLATILE: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJoYXJuZXNzIn0.c2lnbmF0dXJl",
    "duration_ms": 12,
    "secret": "whsec_c2FuZGJveC1leGFtcGxlLXNlY3JldC0zMi1ieXRlcyE=",
}


def _bearer(role: Role, sub: str, scopes: tuple[str, ...] = ()) -> dict[str, str]:
    provider_id = PROVIDER if role is Role.provider else None
    token = mint_token(
        sub=sub, role=role, key=SANDBOX_JWT_SECRET, provider_id=provider_id, scopes=scopes
    )
    return {"Authorization": f"Bearer {token}"}


class Recorder:
    def __init__(self, client: AsyncClient) -> None:
        self.client = client
        self.exchanges: dict[str, dict[str, Any]] = {}
        self._keys = (f"example-{n}" for n in range(1, 10_000))

    async def call(
        self,
        operation_id: str,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: Any = None,
        *,
        expect: int | None = None,
        accept: str | None = None,
    ) -> Any:
        sent = dict(headers or {})
        if method == "POST" and "Authorization" in sent:
            sent["Idempotency-Key"] = next(self._keys)
        if accept:
            sent["Accept"] = accept
        response = await self.client.request(
            method, path, headers=sent, json=body if body is not None else None
        )
        if expect is not None and response.status_code != expect:
            raise RuntimeError(f"{operation_id}: {response.status_code} {response.text}")
        exchange = self.exchanges.setdefault(operation_id, {"responses": {}})
        if body is not None and "request" not in exchange:
            exchange["request"] = body
        media = response.headers.get("content-type", "").split(";")[0]
        if media:
            answer = response.json() if media.endswith("json") else response.text
            exchange["responses"].setdefault(str(response.status_code), {}).setdefault(
                media, answer
            )
        return response.json() if media.endswith("json") else response.text

    def stable(self) -> dict[str, Any]:
        """The exchanges with ids, tokens and timings replaced by stand-ins."""
        seen: dict[str, str] = {}

        def stand_in(match: re.Match[str]) -> str:
            return seen.setdefault(match.group(0), f"01JNQ{len(seen) + 1:021d}")

        def replace(node: Any) -> Any:
            if isinstance(node, str):
                return _ULID.sub(stand_in, node)
            if isinstance(node, dict):
                return {key: replace(node[key]) for key in sorted(node)}
            if isinstance(node, list):
                return [replace(child) for child in node]
            return node

        stable: dict[str, Any] = replace(self.exchanges)
        for value in _walk(stable):
            for key, replacement in _VOLATILE.items():
                if key in value:
                    value[key] = replacement
        return stable


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def _participant(forename: str, nino: str) -> dict[str, Any]:
    return {"title": "Ms", "forename": forename, "surname": "Example", "nino": nino}


async def _flow(rec: Recorder) -> None:
    jcp = _bearer(Role.jcp, "work-coach")
    admin = _bearer(Role.admin, "operator")
    post = _bearer(Role.post, "support-team")
    adviser = _bearer(Role.provider, "adviser", ("referrals",))
    clerk = _bearer(Role.provider, "claims-clerk", ("claims",))

    await rec.call("setSandboxClock", "PUT", "/v1/sandbox/clock", body={"now": NOW}, expect=200)
    await rec.call(
        "createSandboxToken",
        "POST",
        "/v1/sandbox/tokens",
        body={"sub": "adviser", "role": "provider", "provider_id": PROVIDER, "scope": "referrals"},
        expect=200,
    )
    await rec.call("getLiveness", "GET", "/healthz", expect=200)
    await rec.call("getReadiness", "GET", "/readyz", expect=200)
    await rec.call("listProblems", "GET", "/problems", accept="application/json", expect=200)
    await rec.call(
        "getProblem", "GET", "/problems/precondition-failed", accept="application/json", expect=200
    )
    await rec.call("listProblems", "GET", "/problems", accept="text/html", expect=200)
    await rec.call("getProblem", "GET", "/problems/precondition-failed", expect=200)
    await rec.call("listProgrammes", "GET", "/v1/programmes", jcp, expect=200)

    contract_body = {
        "provider_id": PROVIDER,
        "programme": "SES",
        "start_date": "2026-01-01",
        "end_date": "2028-12-31",
        "monthly_service_fee_pence": 0,
        "attachment_fee_pence": 50_000,
        "job_outcome_fee_pence": 100_000,
        "sustainment_fee_pence": 150_000,
    }
    contract = await rec.call(
        "createContract", "POST", "/v1/contracts", admin, contract_body, expect=201
    )
    await rec.call("listContracts", "GET", "/v1/contracts", admin, expect=200)
    await rec.call("getContract", "GET", f"/v1/contracts/{contract['id']}", admin, expect=200)
    await rec.call(
        "calculateServiceCredits",
        "POST",
        "/v1/service-credits/calculate",
        jcp,
        {
            "monthly_service_fee_pence": 1_000_000,
            "months": [
                {
                    "month": "2026-01",
                    "css1": {"eligible": 100, "met": 96},
                    "css2": {"eligible": 120, "met": 100},
                }
            ],
        },
        expect=200,
    )

    # A CRM subscribes before anything happens, so the flow's events are queued for it. In the
    # sandbox a loopback http receiver is allowed; nothing listens here, so deliveries wait.
    subscription = await rec.call(
        "createWebhookSubscription",
        "POST",
        "/v1/webhook-subscriptions",
        _bearer(Role.provider, "crm", ("referrals",)),
        {"url": "http://127.0.0.1:9/prap-events", "event_types": ["started", "ended"]},
        expect=201,
    )
    crm = _bearer(Role.provider, "crm", ("referrals",))

    async def refer(forename: str, nino: str) -> dict[str, Any]:
        body = {
            "programme": "SES",
            "provider_id": PROVIDER,
            "participant": _participant(forename, nino),
        }
        referral: dict[str, Any] = await rec.call(
            "createReferral", "POST", "/v1/referrals", jcp, body, expect=201
        )
        return referral

    async def act(
        operation_id: str,
        referral: dict[str, Any],
        action: str,
        body: Any,
        who: dict[str, str] = adviser,
    ) -> dict[str, Any]:
        path = f"/v1/referrals/{referral['id']}/{action}"
        done: dict[str, Any] = await rec.call(operation_id, "POST", path, who, body, expect=200)
        return done

    async def claim_for(
        referral: dict[str, Any], who: dict[str, str], expect: int
    ) -> dict[str, Any]:
        body = {"referral_id": referral["id"], "claim_type": "attachment"}
        made: dict[str, Any] = await rec.call(
            "createClaim", "POST", "/v1/claims", who, body, expect=expect
        )
        return made

    first = await refer("Ada", "AB123456C")
    await rec.call("listReferrals", "GET", "/v1/referrals?status=referred", jcp, expect=200)
    await rec.call(
        "searchReferrals",
        "POST",
        "/v1/referrals/search",
        jcp,
        {"nino": "AB 12 34 56 C"},
        expect=200,
    )
    await rec.call("getReferral", "GET", f"/v1/referrals/{first['id']}", adviser, expect=200)
    await rec.call(
        "getReferral", "GET", "/v1/referrals/01JNQ000000000000000000000", adviser, expect=404
    )
    await act("acknowledgeReferral", first, "acknowledge", {})
    await rec.call(
        "acceptReferral",
        "POST",
        f"/v1/referrals/{first['id']}/accept",
        adviser | {"If-Match": '"1"'},
        {},
        expect=412,
    )
    await act("acceptReferral", first, "accept", {})
    await act(
        "startReferral", first, "start", {"start_date": DAY, "provider_reference": "CRM-1042"}
    )
    await rec.call(
        "getReferralHistory", "GET", f"/v1/referrals/{first['id']}/history", adviser, expect=200
    )
    # The adviser who recorded the start may not claim for it (GEN 122): a clerk does.
    await claim_for(first, adviser, 403)
    claim = await claim_for(first, clerk, 201)
    await act(
        "endReferral", first, "end", {"end_code": 1, "end_date": DAY, "last_engagement_date": DAY}
    )

    rejected = await refer("Bea", "CE654321A")
    await act(
        "rejectReferral",
        rejected,
        "reject",
        {"reason": "not_suitable", "note": "Outside our area."},
    )
    dna = await refer("Cy", "JK112233D")
    await act("acceptReferral", dna, "accept", {})
    await act("recordDidNotAttend", dna, "did-not-attend", {"note": "No reply to three calls."})
    dns = await refer("Di", "AB654321D")
    await act("acceptReferral", dns, "accept", {})
    await act("recordDidNotStart", dns, "did-not-start", {"initial_meeting_date": DAY})
    backed = await refer("Ed", "CE123456B")
    await act("acceptReferral", backed, "accept", {})
    await act("startReferral", backed, "start", {"start_date": DAY})
    await act(
        "backOutReferral",
        backed,
        "back-out",
        {"reason": "Start recorded on the wrong referral."},
        post,
    )
    await act(
        "cancelReferral", backed, "cancel", {"reason": "did_not_start", "note": "Moved away."}
    )
    second = await refer("Flo", "JK654321C")
    await act("acceptReferral", second, "accept", {})
    await act("startReferral", second, "start", {"start_date": DAY})
    other = await claim_for(second, clerk, 201)
    await rec.call("listEvents", "GET", "/v1/events?limit=3", jcp, expect=200)

    await rec.call("listClaims", "GET", f"/v1/claims?referral_id={first['id']}", clerk, expect=200)
    await rec.call("getClaim", "GET", f"/v1/claims/{claim['id']}", clerk, expect=200)
    await rec.call(
        "validateClaim", "POST", f"/v1/claims/{claim['id']}/validate", post, {}, expect=200
    )
    await rec.call(
        "rejectClaim",
        "POST",
        f"/v1/claims/{other['id']}/reject",
        post,
        {"reason": "No evidence of the start."},
        expect=200,
    )
    await rec.call("getClaimHistory", "GET", f"/v1/claims/{claim['id']}/history", clerk, expect=200)

    await rec.call(
        "updateParticipant",
        "PATCH",
        f"/v1/referrals/{second['id']}/participant",
        jcp,
        {"phone": "0113 496 0001", "title": None},
        expect=200,
    )
    await rec.call(
        "eraseReferral",
        "POST",
        f"/v1/referrals/{rejected['id']}/erasure",
        post,
        {"reason": "Erasure requested by the participant (GEN 136)."},
        expect=200,
    )
    await rec.call(
        "exportSubjectAccess", "POST", "/v1/subject-access", post, {"nino": "AB123456C"}, expect=200
    )
    await rec.call(
        "listReadAudit",
        "GET",
        f"/v1/audit/reads?referral_id={first['id']}&limit=2",
        post,
        expect=200,
    )
    await rec.call(
        "runRetentionJob", "POST", "/v1/jobs/retention/runs", admin, {"as_of": DAY}, expect=200
    )
    hooks = f"/v1/webhook-subscriptions/{subscription['id']}"
    await rec.call(
        "runSandboxWebhookDeliveries",
        "POST",
        "/v1/sandbox/webhook-deliveries/run",
        body={},
        expect=200,
    )
    await rec.call("listWebhookSubscriptions", "GET", "/v1/webhook-subscriptions", crm, expect=200)
    deliveries = await rec.call(
        "listWebhookDeliveries", "GET", f"{hooks}/deliveries?limit=2", crm, expect=200
    )
    await rec.call(
        "retryWebhookDelivery",
        "POST",
        f"{hooks}/deliveries/{deliveries['items'][0]['id']}/retry",
        crm,
        {},
        expect=202,
    )

    run = await rec.call(
        "createPaymentRun", "POST", "/v1/payment-runs", post, {"month": "2026-03"}, expect=201
    )
    await rec.call("listPaymentRuns", "GET", "/v1/payment-runs", post, expect=200)
    await rec.call("getPaymentRun", "GET", f"/v1/payment-runs/{run['id']}", post, expect=200)
    await rec.call(
        "getPaymentRun", "GET", f"/v1/payment-runs/{run['id']}", post, accept="text/csv", expect=200
    )
    await rec.call(
        "getContractServiceCredits",
        "GET",
        f"/v1/contracts/{contract['id']}/service-credits?from=2026-01&to=2026-03",
        admin,
        expect=200,
    )
    await rec.call(
        "getContractServiceCredits",
        "GET",
        f"/v1/contracts/{contract['id']}/service-credits?from=2026-01&to=2026-03",
        admin,
        accept="text/csv",
        expect=200,
    )
    await rec.call(
        "runAutoDnaJob", "POST", "/v1/jobs/auto-dna/runs", admin, {"as_of": DAY}, expect=200
    )
    await rec.call(
        "runAutoEndJob", "POST", "/v1/jobs/auto-end/runs", admin, {"as_of": DAY}, expect=200
    )
    await rec.call("listJobRuns", "GET", "/v1/jobs/runs", admin, expect=200)
    await rec.call("deleteWebhookSubscription", "DELETE", hooks, crm, expect=204)
    await rec.call("resetSandboxClock", "DELETE", "/v1/sandbox/clock", expect=204)


def record_examples(output: Path = EXAMPLES_FILE) -> str:
    from app.cli import migrate_database

    directory = Path(tempfile.mkdtemp(prefix="prap-examples-"))
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{directory / 'examples.db'}",
        sandbox=True,
        scheduler=False,
    )
    migrate_database(settings)
    stable = asyncio.run(_record(settings))
    output.write_text(json.dumps(stable, indent=2, sort_keys=True) + "\n")
    return f"recorded {len(stable)} operations into {output}"


async def _record(settings: Settings) -> dict[str, Any]:
    from app.main import create_app

    app = create_app(settings)
    try:
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://prap.example") as client:
            recorder = Recorder(client)
            await _flow(recorder)
    finally:
        await app.state.engine.dispose()
    return recorder.stable()
