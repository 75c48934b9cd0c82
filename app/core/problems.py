"""RFC 9457 problem responses: one exception type, one handler, one schema.

Every error the service returns is ``application/problem+json`` with the ``code`` of
api-contract.md. Details never carry personal data: they are fixed sentences per code,
plus field paths for validation errors (paths, never the values sent).

Each subclass is also an entry of the error catalogue (``problem_catalogue``): the service
serves it at ``/problems/{code}`` (the problem's ``type``), the OpenAPI document draws each
operation's ``code`` enum from it, and the README's table is generated from it. A new problem
is one subclass with a ``description`` (what it means, what to do), imported at start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, Field

PROBLEM_CONTENT_TYPE = "application/problem+json"
# A relative URI reference (RFC 9457 3.1.1), resolved against the service's own address.
PROBLEM_TYPE_BASE = "/problems/"
PROBLEM_CODES_KEY = "x-problem-codes"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `participant.nino`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(
        description="`/problems/{code}`: the catalogue entry, served by this service (HTML, or "
        "JSON with `Accept: application/json`).",
        examples=["/problems/invalid-transition"],
        json_schema_extra={"format": "uri-reference"},
    )
    title: str = Field(description="A short summary of the problem; the same for every code.")
    status: int = Field(description="The HTTP status code.", ge=400, le=599)
    detail: str = Field(description="What happened this time. Never carries personal data.")
    code: str = Field(
        description="Short machine-readable code; each operation documents the ones it answers."
    )
    instance: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="For `validation-error`: each offending field, by path."
    )


class ProblemError(Exception):
    """A problem the service answers with. Subclasses fix status, code and title."""

    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"
    default_detail: str = "Something went wrong on our side; nothing was changed."
    description: ClassVar[str] = (
        "An unexpected fault on our side; nothing was changed. Retry later with the same "
        "`Idempotency-Key`; if it persists, tell the service desk the `X-Request-ID`."
    )

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.errors = list(errors) if errors is not None else None
        self.headers = headers or {}
        super().__init__(self.detail)

    def to_problem(self, instance: str | None = None) -> Problem:
        return Problem(
            type=PROBLEM_TYPE_BASE + self.code,
            title=self.title,
            status=self.status,
            detail=self.detail,
            code=self.code,
            instance=instance,
            errors=self.errors,
        )


class ValidationProblem(ProblemError):
    status = 422
    code = "validation-error"
    title = "Validation error"
    default_detail = "The request does not match the schema."
    description = (
        "The request does not match the documented schema: a missing or unknown field, a value "
        "of the wrong type or format (a NINO that is not in HMRC's format, an unknown "
        "programme), a body that is not JSON, or a query parameter out of range. `errors` names"
        " each offending field by its path, never its value. Correct the request; sending it "
        "again unchanged gets the same answer."
    )


class Unauthenticated(ProblemError):
    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"
    default_detail = "A valid bearer token is required."
    description = (
        "No bearer token, or one that is expired, malformed, signed with the wrong key or "
        "algorithm, or for another audience. Get a fresh token from your identity provider and "
        "retry."
    )

    def __init__(self, detail: str | None = None) -> None:
        # RFC 9110 §11.6.1: a 401 names the scheme the client should use.
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
    default_detail = "Your role or scope does not allow this."
    description = (
        "The token is valid, but its role or scope does not allow this operation (providers "
        "need the `referrals` scope for lifecycle actions and `claims` for claiming). Use a "
        "token for a user allowed to do it."
    )


class NotFound(ProblemError):
    status = 404
    code = "not-found"
    title = "Not found"
    default_detail = "No such resource."
    description = (
        "No such resource, or one you may not see: another provider's referral or claim answers"
        " exactly as one that does not exist. Check the id."
    )


class MethodNotAllowed(ProblemError):
    status = 405
    code = "method-not-allowed"
    title = "Method not allowed"
    default_detail = "This method is not allowed here."
    description = (
        "The path exists but does not take this method; the `Allow` header lists the ones it does."
    )


class InvalidTransition(ProblemError):
    status = 409
    code = "invalid-transition"
    title = "Invalid transition"
    default_detail = "This action is not allowed in the referral's current state."
    description = (
        "The action is not allowed in the referral's (or claim's) current status, for example "
        "starting a referral that was rejected. Read the resource again: its `allowed_actions` "
        "lists what you may do now."
    )


class AcknowledgementWindowClosed(ProblemError):
    status = 409
    code = "acknowledgement-window-closed"
    title = "Acknowledgement window closed"
    default_detail = (
        "The referral was not acknowledged within its acknowledgement window (JFS 3.07-3.08)."
    )
    description = (
        "The referral was not acknowledged within two working days of receipt, the day of "
        "receipt being day 1 (Job Finding Support guidance, paragraphs 3.07-3.08). It can no "
        "longer be acknowledged, accepted or started; contact the Jobcentre."
    )


class OpenReferralExists(ProblemError):
    status = 409
    code = "open-referral-exists"
    title = "Open referral exists"
    default_detail = "The participant already has an open referral on this programme (JFS 5.19)."
    description = (
        "The participant already has an open referral on this programme (Job Finding Support "
        "guidance, paragraph 5.19). Wait for it to close before referring again."
    )


class ReReferralNotAllowed(ProblemError):
    status = 409
    code = "re-referral-not-allowed"
    title = "Re-referral not allowed"
    default_detail = (
        "The participant has started on this programme before and may not be re-referred."
    )
    description = (
        "The participant started on this programme before and may not be re-referred to it "
        "(Specialist Employability Support guidance 3.18; Job Finding Support guidance 3.42 and"
        " 5.16)."
    )


class ExclusiveProgramme(ProblemError):
    status = 409
    code = "exclusive-programme"
    title = "Exclusive programme"
    default_detail = (
        "The participant has an open referral on a programme that excludes referral to other "
        "provision (HTW 70)."
    )


class DuplicateClaim(ProblemError):
    status = 409
    code = "duplicate-claim"
    title = "Duplicate claim"
    default_detail = "A claim of this type exists for the referral."
    description = (
        "A claim of this type already exists for the referral; each payment is claimed once. "
        "Read the existing claim with `GET /v1/claims?referral_id=`."
    )


class IdempotencyKeyInUse(ProblemError):
    status = 409
    code = "idempotency-key-in-use"
    title = "Idempotency key in use"
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."
    description = (
        "A request with this `Idempotency-Key` is still being processed. Wait a moment and "
        "retry with the same key and body: you will get its answer."
    )


class PreconditionFailed(ProblemError):
    status = 412
    code = "precondition-failed"
    title = "Precondition failed"
    default_detail = "The If-Match version does not match the current version of the resource."
    description = (
        "The `If-Match` entity tag is not the resource's current one: someone changed it since "
        "you read it. Read it again (the `ETag` header), decide again, and retry with the new "
        "tag."
    )


class SpecialCustomerRecord(ProblemError):
    status = 422
    code = "special-customer-record"
    title = "Special Customer Record"
    default_detail = (
        "Special Customer Records must not be held on any electronic system (GEN 62-64, "
        "FND 21.3). Use the clerical process instead: refer on form SL2 and claim on PRaP 11."
    )
    description = (
        "Special Customer Records must not be held on any electronic system (DWP generic "
        "provider guidance, paragraphs 62-64; Flexible New Deal guidance 21.3). The request was"
        " refused before anything of it was stored or logged. Use the clerical process: refer "
        "on form SL2 and claim on form PRaP 11."
    )


class MappaContactDetails(ProblemError):
    status = 422
    code = "mappa-contact-details"
    title = "MAPPA contact details"
    default_detail = (
        "A MAPPA referral must not carry address, postcode or telephone numbers (SES 3.32)."
    )
    description = (
        "A MAPPA referral must not carry an address, postcode or telephone number (Specialist "
        "Employability Support guidance, paragraph 3.32). Send it without them; the provider's "
        "nominated officer holds further information."
    )


class NoContract(ProblemError):
    status = 422
    code = "no-contract"
    title = "No contract"
    default_detail = (
        "The provider holds no contract for this programme in force on the referral date."
    )
    description = (
        "The provider holds no contract for this programme in force on the referral date. Check"
        " the provider and programme, or ask DWP to record the contract."
    )


class EndCodeAutomatedOnly(ProblemError):
    status = 422
    code = "end-code-automated-only"
    title = "End code automated only"
    default_detail = "End code 45 (End of Allotted Time) is set by the system only (JFS 5.08)."
    description = (
        "End code 45 (End of Allotted Time) is set by the service only, when the allotted time "
        "runs out (Job Finding Support guidance, paragraph 5.08). Use another end code."
    )


class PolicyReferenceRequired(ProblemError):
    status = 422
    code = "policy-reference-required"
    title = "Policy reference required"
    default_detail = (
        "End codes 37 and 46 need a policy_reference from the policy team (JFS annex 2)."
    )
    description = (
        "End codes 37 and 46 may be used only on the policy team's advice (Job Finding Support "
        "guidance, annex 2): send the `policy_reference` they gave you."
    )


class DateOutOfRange(ProblemError):
    status = 422
    code = "date-out-of-range"
    title = "Date out of range"
    default_detail = "A date breaks a date rule."
    description = (
        "A date breaks a date rule: before the referral or start date, in the future, an end "
        "before the last engagement, a report range longer than 36 months, or a month after the"
        " current one. Correct the date."
    )


class ClaimNotEligible(ProblemError):
    status = 422
    code = "claim-not-eligible"
    title = "Claim not eligible"
    default_detail = "The claim breaks an eligibility rule."
    description = (
        "The claim breaks an eligibility rule: the programme does not fund this kind of claim, "
        "or its hours, dates or basis do not meet the test, or a sustainment has no validated "
        "job outcome before it. Check the claim against the programme's payment rules."
    )


class IdempotencyKeyReused(ProblemError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused"
    default_detail = "This Idempotency-Key was used with a different request."
    description = (
        "This `Idempotency-Key` was used, within the last 24 hours, with a different request. "
        "Use a new key for a new request."
    )


class SegregationOfDuties(ProblemError):
    status = 403
    code = "segregation-of-duties"
    title = "Segregation of duties"
    default_detail = (
        "Whoever records a referral's start or end may not claim for it, and whoever claims "
        "for it may not record its start or end (GEN 122)."
    )
    description = (
        "Whoever recorded a referral's start or end may not claim a payment for it, and whoever"
        " claimed for it may not then record its start or end (DWP generic provider guidance, "
        "paragraph 122, fraud principles). Have a colleague do it."
    )


class ServiceUnavailable(ProblemError):
    status = 503
    code = "service-unavailable"
    title = "Service unavailable"
    default_detail = "The database is not reachable; nothing was changed. Retry shortly."
    description = (
        "The service cannot reach its database just now. Retry after the number of seconds in "
        "`Retry-After`, with the same `Idempotency-Key`: if the change was made, the retry "
        "answers with its result; if not, it makes it."
    )
    RETRY_AFTER_SECONDS = 2

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


class UnsupportedMediaType(ProblemError):
    status = 415
    code = "unsupported-media-type"
    title = "Unsupported media type"
    default_detail = "The request body must be JSON (`Content-Type: application/json`)."
    description = (
        "The request has a body whose `Content-Type` is not JSON: send `application/json` (or "
        "the `application/*+json` type the operation documents), or no body at all."
    )


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    code: str
    title: str
    status: int
    description: str


def _problem_classes(root: type[ProblemError]) -> list[type[ProblemError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _problem_classes(sub)
    return found


def problem_catalogue() -> list[CatalogueEntry]:
    """Every problem the service can answer, by status then code: every ``ProblemError``
    subclass imported so far (``app.main`` imports them all)."""
    entries: dict[str, CatalogueEntry] = {}
    for error in _problem_classes(ProblemError):
        entries.setdefault(
            error.code,
            CatalogueEntry(
                code=error.code,
                title=error.title,
                status=error.status,
                description=error.description or error.default_detail,
            ),
        )
    return sorted(entries.values(), key=lambda e: (e.status, e.code))


def catalogue_markdown() -> str:
    """The README's table of codes (``prap problems`` writes it; a test compares)."""
    rows = ["| status | code | meaning and what to do |", "|---|---|---|"]
    rows += [f"| {e.status} | `{e.code}` | {e.description} |" for e in problem_catalogue()]
    return "\n".join(rows) + "\n"


def problem_responses(*errors: type[ProblemError]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: every listed problem, grouped by status, documented."""
    by_status: dict[int, list[type[ProblemError]]] = {}
    for error in errors:
        by_status.setdefault(error.status, []).append(error)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        codes = ", ".join(f"`{e.code}`" for e in group)
        responses[status] = {
            "description": f"{HTTPStatus(status).phrase}: {codes}",
            PROBLEM_CODES_KEY: [e.code for e in group],
            "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return responses


_TABLE_START = "<!-- problem-codes:start (generated by `prap problems`) -->"
_TABLE_END = "<!-- problem-codes:end -->"


def catalogue_section(text: str) -> str | None:
    """The generated table inside a document, or None when it has none."""
    start, end = text.find(_TABLE_START), text.find(_TABLE_END)
    if start < 0 or end < start:
        return None
    return text[start + len(_TABLE_START) : end].strip("\n") + "\n"


def write_catalogue_table(path: Path) -> None:
    text = path.read_text()
    start, end = text.find(_TABLE_START), text.find(_TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"{path} has no {_TABLE_START} ... {_TABLE_END} section")
    path.write_text(text[: start + len(_TABLE_START)] + "\n" + catalogue_markdown() + text[end:])
