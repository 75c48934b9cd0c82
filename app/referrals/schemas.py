"""Request and response bodies for referrals and their events (api-contract.md, Referrals)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
)
from pydantic.json_schema import SkipJsonSchema

from app.contracts.schemas import ProviderId, WithoutNul
from app.programmes.schemas import ProgrammeCode
from app.referrals.rules import NINO_PATTERN, is_valid_nino, normalise_nino
from app.referrals.states import (
    ActorRole,
    CallerAction,
    CancellationReason,
    ClosedBy,
    EndCode,
    EventType,
    ReferralStatus,
    RejectionReason,
)

_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")


def _nino(value: str) -> str:
    if not is_valid_nino(value):
        # The value itself is never echoed back (personal data).
        raise ValueError("not a valid National Insurance number")
    return normalise_nino(value)


def _postcode(value: str) -> str:
    compact = "".join(value.split()).upper()
    if not _POSTCODE.match(compact):
        raise ValueError("not a valid UK postcode")
    return f"{compact[:-3]} {compact[-3:]}"


# HMRC's format, in either case, with spaces anywhere (removed, and upper-cased, after).
Nino = Annotated[
    str,
    StringConstraints(min_length=9, max_length=30, pattern=NINO_PATTERN),
    AfterValidator(_nino),
    Field(
        description="National Insurance number in HMRC's format: two prefix letters (never "
        "BG, GB, KN, NK, NT, TN or ZZ; first not D, F, I, Q, U or V; second not D, F, I, O, Q, "
        "U or V), six digits and a suffix A-D; either case, spaces anywhere.",
        examples=["AB 12 34 56 C"],
    ),
]
Postcode = Annotated[str, StringConstraints(max_length=10), AfterValidator(_postcode)]
ShortText = Annotated[str, StringConstraints(max_length=100), WithoutNul]
Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
LongText = Annotated[str, StringConstraints(max_length=2000), WithoutNul]
Phone = Annotated[str, StringConstraints(min_length=3, max_length=30, pattern=r"^[0-9+() -]+$")]
Note = Annotated[str, StringConstraints(max_length=2000), WithoutNul]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Address(Strict):
    lines: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=6
    )
    postcode: Postcode | None = None


class Participant(Strict):
    """The participant (SES 3.33)."""

    title: ShortText | None = None
    forename: Name
    surname: Name
    nino: Nino
    date_of_birth: date | None = None
    address: Address | None = None
    phone: Phone | None = None
    mobile: Phone | None = None
    email: Email | None = None
    welsh_language: bool = False

    def has_contact_details(self) -> bool:
        """Address, postcode or a telephone number (SES 3.32)."""
        address = self.address is not None and (bool(self.address.lines) or self.address.postcode)
        return bool(address or self.phone or self.mobile)


class AddressPatch(Strict):
    lines: list[Annotated[str, StringConstraints(min_length=1, max_length=100)]] | None = Field(
        default=None, max_length=6
    )
    postcode: Postcode | None = None


class ParticipantPatch(Strict):
    """A JSON merge patch (RFC 7396) of the participant (Job Finding Support guidance 4.23-4.24): a
    member sets a field, ``null`` removes it, an absent one is left alone. The NINO cannot
    change, so ``nino`` is not a member (a patch naming it is a validation error)."""

    title: ShortText | None = None
    # A participant always has a name: the names may change but not be removed (the
    # document says string, not null; a null is refused as off the schema).
    forename: Name | SkipJsonSchema[None] = None
    surname: Name | SkipJsonSchema[None] = None
    date_of_birth: date | None = None
    address: AddressPatch | None = None
    phone: Phone | None = None
    mobile: Phone | None = None
    email: Email | None = None
    welsh_language: bool | None = None

    def as_merge_patch(self) -> dict[str, object]:
        """The members the client sent, ``null`` kept (RFC 7396: null removes)."""
        return self.model_dump(mode="json", exclude_unset=True)


class Markers(Strict):
    mappa: bool = False
    safeguard: bool = Field(default=False, description="Vulnerable (safeguard) marker.")
    disadvantaged: bool = False
    incident: bool = False
    disabled: bool = False


class Details(Strict):
    """The rest of the SES 3.33 data set."""

    qualifications: LongText | None = None
    driving_licence: bool | None = None
    aims: LongText | None = None
    job_preferences: LongText | None = None
    employment_history: LongText | None = None
    preferred_hours: LongText | None = None
    childcare: LongText | None = None
    claim_pattern: LongText | None = None
    availability_restrictions: LongText | None = Field(
        default=None, description="Employment restrictions."
    )


class ReferralCreate(Strict):
    programme: ProgrammeCode
    provider_id: ProviderId
    # Strict: only the JSON literal false gets here (true is refused at the boundary); "true",
    # 1 or "yes" must not slip through lax coercion as an SCR stored electronically.
    special_customer_record: StrictBool = Field(
        default=False,
        description="`true` is refused before anything else (422 `special-customer-record`): "
        "SCR referrals are clerical (SL2, PRaP 11).",
    )
    participant: Participant
    markers: Markers = Field(default_factory=Markers)
    details: Details = Field(default_factory=Details)


class EmptyBody(Strict):
    pass


class RejectBody(Strict):
    reason: RejectionReason
    note: Note | None = None


class CancelBody(Strict):
    reason: CancellationReason
    note: Note | None = None


class DidNotAttendBody(Strict):
    note: Note | None = None


class DidNotStartBody(Strict):
    initial_meeting_date: date | None = Field(
        default=None, description="When they attended the initial meeting but did not start."
    )
    note: Note | None = None


class StartBody(Strict):
    start_date: date
    provider_reference: ShortText | None = None


class EndBody(Strict):
    end_code: EndCode
    end_date: date
    last_engagement_date: date
    policy_reference: ShortText | None = None


class BackOutBody(Strict):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=2000), WithoutNul]


class SearchBody(Strict):
    nino: Nino


class ReferralOut(BaseModel):
    id: str
    programme: ProgrammeCode
    provider_id: str
    contract_id: str
    status: ReferralStatus
    referral_date: date
    acknowledgement_due: date
    acknowledged_at: datetime | None
    accepted_at: datetime | None
    start_date: date | None
    initial_meeting_date: date | None
    end_date: date | None
    end_code: EndCode | None
    last_engagement_date: date | None
    policy_reference: str | None
    provider_reference: str | None
    rejection_reason: RejectionReason | None
    cancellation_reason: CancellationReason | None
    closed_by: ClosedBy | None
    closed_at: datetime | None
    start_backed_out_at: datetime | None
    cancel_overdue: bool = Field(
        description="A backed-out start awaits its did-not-start cancel for over 24 hours."
    )
    re_referral: bool
    mappa: bool | None = Field(description="Null once the referral is erased.")
    mappa_notice: str | None
    auto_dna_on: date = Field(
        description="If not started or closed by then, auto DNA closes it this day (JFS 3.40)."
    )
    auto_end_on: date | None = Field(
        description="Once started, provision ends by itself this day (JFS 5.08)."
    )
    participant: Participant | None = Field(description="Null once the referral is erased.")
    markers: Markers | None
    details: Details | None
    erased_at: datetime | None = Field(
        description="When the participant's personal data was erased (GEN 136, JFS 1.33)."
    )
    allowed_actions: list[CallerAction] = Field(
        description="What this caller may do next, given the referral's status, the caller's "
        "role and scope, and the time limits: each is the last segment of an action's path "
        "(`POST /v1/referrals/{id}/{action}`). Empty when the caller can do nothing more."
    )
    version: int
    created_at: datetime
    updated_at: datetime


class ReferralList(BaseModel):
    items: list[ReferralOut]
    next_cursor: str | None


class ReferralSearchResult(BaseModel):
    items: list[ReferralOut]


class Actor(BaseModel):
    sub: str
    role: ActorRole
    provider_id: str | None


class EventOut(BaseModel):
    id: int
    cursor: str = Field(description="Position in the change feed (`GET /v1/events?after=`).")
    referral_id: str
    type: EventType
    occurred_at: datetime
    actor: Actor
    status: ReferralStatus = Field(description="The referral's status after the event.")
    version: int = Field(description="The referral's version after the event.")
    programme: ProgrammeCode | None = None
    provider_id: str
    reason: str | None = None
    note: str | None = None
    start_date: date | None = None
    initial_meeting_date: date | None = None
    provider_reference: str | None = None
    end_code: EndCode | None = None
    end_date: date | None = None
    last_engagement_date: date | None = None
    policy_reference: str | None = None
    referral_date: date | None = None
    backed_out_start_date: date | None = None
    cancel_due_by: datetime | None = None
    changed_fields: list[str] | None = Field(
        default=None,
        description="`participant_changed`: the names of the fields that changed, never "
        "their values.",
    )


class EventHistory(BaseModel):
    items: list[EventOut]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None
