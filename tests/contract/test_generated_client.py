"""A client generated from the committed OpenAPI document drives the whole service.

The client is generated here, with the installed ``openapi-python-client`` (CI installs it
from the ``test`` extra; a missing generator fails the test, it is never skipped), from
``openapi/openapi.json`` into a temporary directory; nothing generated is committed. The
generator must not warn: a warning means part of the document could not be turned into code.

The end-to-end test then uses that client only (its ``AuthenticatedClient`` over an ASGI
transport into the app under test): an SES referral from creation to its end with code 1, an
attachment and a job outcome claimed by a second provider user (GEN 122), validated by POST,
and paid by a payment run.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import PROVIDER, token

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
PACKAGE = "prap_generated_client"
BASE_URL = "http://prap.test"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """Generate the client package, import it, and forget it again afterwards."""
    # The generator and its post-hooks (ruff) live next to the interpreter in a venv.
    search_path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    generator = shutil.which("openapi-python-client", path=search_path)
    assert generator, "openapi-python-client is not installed (pip install -e '.[test]')"
    root = tmp_path_factory.mktemp("generated-client")
    result = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(SPEC),
            "--output-path",
            str(root / PACKAGE),
            "--meta",
            "none",
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": search_path},
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "warning" not in output.lower(), output
    assert "error" not in output.lower(), output
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


class Generated:
    """The generated package: its modules by dotted path, and clients into the app."""

    def __init__(self, package: ModuleType, app: FastAPI) -> None:
        self.package = package
        self.app = app
        self.opened: list[Any] = []

    def mod(self, dotted: str) -> Any:
        return importlib.import_module(f"{self.package.__name__}.{dotted}")

    def client(self, bearer: str | None = None) -> Any:
        """``AuthenticatedClient`` with a bearer token, else the plain ``Client``."""
        args: dict[str, Any] = {
            "base_url": BASE_URL,
            "raise_on_unexpected_status": True,
            "httpx_args": {"transport": httpx.ASGITransport(app=self.app)},
        }
        if bearer is None:
            client = self.package.Client(**args)
        else:
            client = self.package.AuthenticatedClient(token=bearer, **args)
        self.opened.append(client)
        return client


@pytest.fixture
async def g(generated: ModuleType, app: FastAPI) -> AsyncIterator[Generated]:
    clients = Generated(generated, app)
    yield clients
    for client in clients.opened:
        await client.get_async_httpx_client().aclose()


def _ok(response: Any, status: int, parsed_type: Any) -> Any:
    """The parsed body of a response with the expected status and model."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, parsed_type), response.parsed
    return response.parsed


async def test_referral_to_payment_through_the_generated_client(g: Generated) -> None:
    models = g.mod("models")
    api = "api.{}".format

    set_clock = g.mod(api("sandbox.set_sandbox_clock"))
    create_contract = g.mod(api("contracts.create_contract"))
    create_referral = g.mod(api("referrals.create_referral"))
    acknowledge = g.mod(api("referrals.acknowledge_referral"))
    accept = g.mod(api("referrals.accept_referral"))
    start = g.mod(api("referrals.start_referral"))
    end = g.mod(api("referrals.end_referral"))
    get_referral = g.mod(api("referrals.get_referral"))
    history = g.mod(api("referrals.get_referral_history"))
    create_claim = g.mod(api("claims.create_claim"))
    validate_claim = g.mod(api("claims.validate_claim"))
    get_claim = g.mod(api("claims.get_claim"))
    create_payment_run = g.mod(api("payments.create_payment_run"))

    sandbox = g.client()
    admin = g.client(token("admin", sub="operator"))
    jcp = g.client(token("jcp", sub="work-coach"))
    # Provider user A records the lifecycle; user B, of the same provider, claims (GEN 122).
    adviser = g.client(
        token("provider", sub="adviser-a", provider_id=PROVIDER, scopes=("referrals", "claims"))
    )
    claimant = g.client(token("provider", sub="claims-b", provider_id=PROVIDER, scopes=("claims",)))
    post = g.client(token("post", sub="post-officer"))

    async def today(day: dt.date) -> None:
        clock = _ok(
            await set_clock.asyncio_detailed(
                client=sandbox,
                body=models.ClockSet(
                    now=dt.datetime(day.year, day.month, day.day, 10, tzinfo=dt.UTC)
                ),
            ),
            200,
            models.ClockOut,
        )
        assert clock.today == day.isoformat()

    # --- contract (admin) -----------------------------------------------------------------
    await today(dt.date(2026, 3, 2))
    contract = _ok(
        await create_contract.asyncio_detailed(
            client=admin,
            body=models.ContractCreate(
                provider_id=PROVIDER,
                programme=models.ProgrammeCode.SES,
                start_date=dt.date(2026, 1, 1),
                end_date=dt.date(2027, 12, 31),
                monthly_service_fee_pence=0,
                attachment_fee_pence=40_000,
                job_outcome_fee_pence=125_000,
                sustainment_fee_pence=150_000,
            ),
        ),
        201,
        models.ContractOut,
    )
    assert contract.programme is models.ProgrammeCode.SES

    # --- referral (jcp) -------------------------------------------------------------------
    response = await create_referral.asyncio_detailed(
        client=jcp,
        body=models.ReferralCreate(
            programme=models.ProgrammeCode.SES,
            provider_id=PROVIDER,
            participant=models.Participant(
                title="Ms",
                forename="Ada",
                surname="Byron",
                nino="AB123456C",
                date_of_birth=dt.date(1990, 5, 1),
                address=models.Address(lines=["1 High Street", "Leeds"], postcode="LS1 1AA"),
                phone="0113 496 0000",
                email="ada@example.org",
            ),
            markers=models.Markers(disadvantaged=True),
            details=models.Details(driving_licence=True, aims="Warehouse work"),
        ),
    )
    referral = _ok(response, 201, models.ReferralOut)
    rid = referral.id
    assert response.headers["location"].endswith(f"/v1/referrals/{rid}")
    assert referral.status is models.ReferralStatus.REFERRED
    assert referral.programme is models.ProgrammeCode.SES
    assert referral.referral_date == dt.date(2026, 3, 2)
    assert referral.acknowledgement_due == dt.date(2026, 3, 3)
    assert referral.closed_by is None
    assert referral.end_code is None
    assert referral.re_referral is False
    assert referral.mappa is False
    assert referral.contract_id == contract.id

    # --- lifecycle (provider user A) ------------------------------------------------------
    # No body at all: the document says the body is optional, and the client may omit it.
    response = await acknowledge.asyncio_detailed(rid, client=adviser)
    referral = _ok(response, 200, models.ReferralOut)
    assert referral.status is models.ReferralStatus.ACKNOWLEDGED
    assert isinstance(referral.acknowledged_at, dt.datetime)
    etag = response.headers["etag"]

    response = await accept.asyncio_detailed(
        rid, client=adviser, body=models.EmptyBody(), if_match=etag
    )
    referral = _ok(response, 200, models.ReferralOut)
    assert referral.status is models.ReferralStatus.ACCEPTED
    assert models.CallerAction.START in referral.allowed_actions

    await today(dt.date(2026, 3, 5))
    referral = _ok(
        await start.asyncio_detailed(
            rid,
            client=adviser,
            body=models.StartBody(start_date=dt.date(2026, 3, 4), provider_reference="CRM-1"),
        ),
        200,
        models.ReferralOut,
    )
    assert referral.status is models.ReferralStatus.STARTED
    assert referral.start_date == dt.date(2026, 3, 4)
    assert referral.allowed_actions == [models.CallerAction.END]

    await today(dt.date(2026, 4, 20))
    response = await end.asyncio_detailed(
        rid,
        client=adviser,
        body=models.EndBody(
            end_code=models.EndCode.FOUND_WORK,
            end_date=dt.date(2026, 4, 17),
            last_engagement_date=dt.date(2026, 4, 16),
        ),
    )
    referral = _ok(response, 200, models.ReferralOut)
    assert referral.status is models.ReferralStatus.ENDED
    assert referral.end_code is models.EndCode.FOUND_WORK
    assert referral.end_date == dt.date(2026, 4, 17)
    assert referral.last_engagement_date == dt.date(2026, 4, 16)
    assert referral.closed_by is models.ClosedBy.PROVIDER
    assert response.headers["etag"].strip('W/"') == str(referral.version)

    fetched = _ok(await get_referral.asyncio_detailed(rid, client=jcp), 200, models.ReferralOut)
    assert fetched.version == referral.version
    assert fetched.status is models.ReferralStatus.ENDED
    events = _ok(await history.asyncio_detailed(rid, client=jcp), 200, models.EventHistory)
    assert [e.type_ for e in events.items] == [
        models.EventType.CREATED,
        models.EventType.ACKNOWLEDGED,
        models.EventType.ACCEPTED,
        models.EventType.STARTED,
        models.EventType.ENDED,
    ]
    assert events.items[0].actor.role is models.ActorRole.JCP
    assert {e.actor.sub for e in events.items[1:]} == {"adviser-a"}

    # --- claims (provider user B) ---------------------------------------------------------
    # The user who recorded the start and end may not claim (GEN 122).
    refused = _ok(
        await create_claim.asyncio_detailed(
            client=adviser,
            body=models.ClaimCreate(referral_id=rid, claim_type=models.ClaimType.ATTACHMENT),
        ),
        403,
        models.CreateClaimProblem,
    )
    # The operation's own code enum (issue 15): a client can switch on it exhaustively.
    assert refused.code is models.CreateClaimProblemCode.SEGREGATION_OF_DUTIES
    assert refused.type_ == "/problems/segregation-of-duties"

    attachment = _ok(
        await create_claim.asyncio_detailed(
            client=claimant,
            body=models.ClaimCreate(referral_id=rid, claim_type=models.ClaimType.ATTACHMENT),
        ),
        201,
        models.ClaimOut,
    )
    assert attachment.claim_type is models.ClaimType.ATTACHMENT
    assert attachment.status is models.ClaimStatus.SUBMITTED
    assert attachment.amount_pence == 40_000
    assert attachment.referral_id == rid
    assert attachment.contract_id == contract.id

    outcome = _ok(
        await create_claim.asyncio_detailed(
            client=claimant,
            body=models.ClaimCreate(
                referral_id=rid,
                claim_type=models.ClaimType.JOB_OUTCOME,
                job_start_date=dt.date(2026, 4, 13),
                hours_per_week=16,
                basis=models.OutcomeBasis.EXPECTED_13_WEEKS,
                evidence_reference="payslip-0413",
            ),
        ),
        201,
        models.ClaimOut,
    )
    assert outcome.claim_type is models.ClaimType.JOB_OUTCOME
    assert outcome.status is models.ClaimStatus.SUBMITTED
    assert outcome.basis is models.OutcomeBasis.EXPECTED_13_WEEKS
    assert outcome.job_start_date == dt.date(2026, 4, 13)
    assert outcome.hours_per_week == 16
    assert outcome.amount_pence == 125_000

    # --- validation and payment (post) ----------------------------------------------------
    await today(dt.date(2026, 4, 21))
    for claim in (attachment, outcome):
        validated = _ok(
            await validate_claim.asyncio_detailed(
                claim.id, client=post, body=models.ClaimValidate()
            ),
            200,
            models.ClaimOut,
        )
        assert validated.status is models.ClaimStatus.VALIDATED
        assert isinstance(validated.validated_at, dt.datetime)

    response = await create_payment_run.asyncio_detailed(
        client=post, body=models.PaymentRunCreate(month="2026-04")
    )
    run = _ok(response, 201, models.PaymentRunOut)
    assert run.month == "2026-04"
    assert run.total_pence == sum(line.amount_pence for line in run.lines)
    claim_lines = {
        line.claim_id: line for line in run.lines if line.kind is models.PaymentLineKind.CLAIM
    }
    assert set(claim_lines) == {attachment.id, outcome.id}
    assert claim_lines[attachment.id].amount_pence == 40_000
    assert claim_lines[outcome.id].amount_pence == 125_000
    assert {line.contract_id for line in claim_lines.values()} == {contract.id}
    for line in run.lines:
        assert line.kind in (models.PaymentLineKind.CLAIM, models.PaymentLineKind.SERVICE_FEE)
        if line.kind is models.PaymentLineKind.SERVICE_FEE:
            assert line.claim_id is None
            assert line.deduction_pence is not None
    assert run.total_pence >= 165_000

    for claim in (attachment, outcome):
        paid = _ok(
            await get_claim.asyncio_detailed(claim.id, client=claimant), 200, models.ClaimOut
        )
        assert paid.status is models.ClaimStatus.PAID
        assert paid.payment_run_id == run.id

    # A second run for the month pays nothing twice.
    again = _ok(
        await create_payment_run.asyncio_detailed(
            client=post, body=models.PaymentRunCreate(month="2026-04")
        ),
        201,
        models.PaymentRunOut,
    )
    assert not [line for line in again.lines if line.kind is models.PaymentLineKind.CLAIM]
    assert again.total_pence == sum(line.amount_pence for line in again.lines)
