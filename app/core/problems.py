"""RFC 9457 problem responses: one exception type, one handler, one schema.

Every error the service returns is ``application/problem+json`` with the ``code`` of
api-contract.md. Details never carry personal data: they are fixed sentences per code,
plus field paths for validation errors (paths, never the values sent).
"""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:prap:problem:"
PROBLEM_CODES_KEY = "x-problem-codes"


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `participant.nino`.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=["urn:prap:problem:invalid-transition"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Short machine-readable code from the API contract.")
    instance: str | None = None
    errors: list[FieldError] | None = None


class ProblemError(Exception):
    """A problem the service answers with. Subclasses fix status, code and title."""

    status: int = 500
    code: str = "internal-error"
    title: str = "Internal error"
    default_detail: str = "Something went wrong on our side; nothing was changed."

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


class Unauthenticated(ProblemError):
    status = 401
    code = "unauthenticated"
    title = "Unauthenticated"
    default_detail = "A valid bearer token is required."

    def __init__(self, detail: str | None = None) -> None:
        # RFC 9110 §11.6.1: a 401 names the scheme the client should use.
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "Forbidden"
    default_detail = "Your role or scope does not allow this."


class NotFound(ProblemError):
    status = 404
    code = "not-found"
    title = "Not found"
    default_detail = "No such resource."


class MethodNotAllowed(ProblemError):
    status = 405
    code = "method-not-allowed"
    title = "Method not allowed"
    default_detail = "This method is not allowed here."


class InvalidTransition(ProblemError):
    status = 409
    code = "invalid-transition"
    title = "Invalid transition"
    default_detail = "This action is not allowed in the referral's current state."


class AcknowledgementWindowClosed(ProblemError):
    status = 409
    code = "acknowledgement-window-closed"
    title = "Acknowledgement window closed"
    default_detail = (
        "The referral was not acknowledged within its acknowledgement window (JFS 3.07-3.08)."
    )


class OpenReferralExists(ProblemError):
    status = 409
    code = "open-referral-exists"
    title = "Open referral exists"
    default_detail = "The participant already has an open referral on this programme (JFS 5.19)."


class ReReferralNotAllowed(ProblemError):
    status = 409
    code = "re-referral-not-allowed"
    title = "Re-referral not allowed"
    default_detail = (
        "The participant has started on this programme before and may not be re-referred."
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


class IdempotencyKeyInUse(ProblemError):
    status = 409
    code = "idempotency-key-in-use"
    title = "Idempotency key in use"
    default_detail = "A request with this Idempotency-Key is still being processed; retry shortly."


class PreconditionFailed(ProblemError):
    status = 412
    code = "precondition-failed"
    title = "Precondition failed"
    default_detail = "The If-Match version does not match the current version of the resource."


class SpecialCustomerRecord(ProblemError):
    status = 422
    code = "special-customer-record"
    title = "Special Customer Record"
    default_detail = (
        "Special Customer Records must not be held on any electronic system (GEN 62-64, "
        "FND 21.3). Use the clerical process instead: refer on form SL2 and claim on PRaP 11."
    )


class MappaContactDetails(ProblemError):
    status = 422
    code = "mappa-contact-details"
    title = "MAPPA contact details"
    default_detail = (
        "A MAPPA referral must not carry address, postcode or telephone numbers (SES 3.32)."
    )


class NoContract(ProblemError):
    status = 422
    code = "no-contract"
    title = "No contract"
    default_detail = (
        "The provider holds no contract for this programme in force on the referral date."
    )


class EndCodeAutomatedOnly(ProblemError):
    status = 422
    code = "end-code-automated-only"
    title = "End code automated only"
    default_detail = "End code 45 (End of Allotted Time) is set by the system only (JFS 5.08)."


class PolicyReferenceRequired(ProblemError):
    status = 422
    code = "policy-reference-required"
    title = "Policy reference required"
    default_detail = (
        "End codes 37 and 46 need a policy_reference from the policy team (JFS annex 2)."
    )


class DateOutOfRange(ProblemError):
    status = 422
    code = "date-out-of-range"
    title = "Date out of range"
    default_detail = "A date breaks a date rule."


class ClaimNotEligible(ProblemError):
    status = 422
    code = "claim-not-eligible"
    title = "Claim not eligible"
    default_detail = "The claim breaks an eligibility rule."


class IdempotencyKeyReused(ProblemError):
    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused"
    default_detail = "This Idempotency-Key was used with a different request."


class SegregationOfDuties(ProblemError):
    status = 403
    code = "segregation-of-duties"
    title = "Segregation of duties"
    default_detail = (
        "Whoever records a referral's start or end may not claim for it, and whoever claims "
        "for it may not record its start or end (GEN 122)."
    )


class ServiceUnavailable(ProblemError):
    status = 503
    code = "service-unavailable"
    title = "Service unavailable"
    default_detail = "The database is not reachable; nothing was changed. Retry shortly."
    RETRY_AFTER_SECONDS = 2

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(self.RETRY_AFTER_SECONDS)})


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
