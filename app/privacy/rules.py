"""What erasure keeps of a referral's history (domain.md §10, GEN 136-137), as data.

An event keeps only the fields named here: ids, dates, codes and references needed for audit
and payment. Everything else — notes, free-text reasons, and any field a future event type
adds without being listed — is removed, so a new kind of event is erased safely by default.
"""

from __future__ import annotations

from app.referrals.states import EventType

# Fields that never hold personal data, whatever the event.
NON_PERSONAL_EVENT_FIELDS = frozenset(
    {
        "programme",
        "referral_date",
        "re_referral",
        "initial_meeting_date",
        "start_date",
        "provider_reference",
        "end_code",
        "end_date",
        "last_engagement_date",
        "policy_reference",
        "backed_out_start_date",
        "cancel_due_by",
        "as_of",
        # updateParticipant names the fields that changed, never their values (§5a).
        "changed_fields",
    }
)

# ``reason`` is a code from a closed list in these events (RejectionReason,
# CancellationReason); elsewhere (a back-out, an erasure) it is free text and goes.
CODED_REASON_EVENTS = frozenset(
    {
        EventType.rejected,
        EventType.cancelled,
        EventType.did_not_attend,
        EventType.did_not_start,
        EventType.auto_did_not_attend,
    }
)

# Fields that may hold personal data: removed on erasure.
PERSONAL_EVENT_FIELDS = frozenset({"note", "reason"})


def shows_personal_data(event_type: str, data: dict[str, object]) -> bool:
    """Whether an event, as it stands, holds something erasure would remove (a note, a
    free-text reason): showing it is a read of the participant (GEN 71)."""
    return erased_event_data(event_type, data) != data


def erased_event_data(event_type: str, data: dict[str, object]) -> dict[str, object]:
    """The pure form of what the erasure's SQL keeps of one event's data."""
    return {
        key: value
        for key, value in data.items()
        if key in NON_PERSONAL_EVENT_FIELDS
        or (key == "reason" and event_type in CODED_REASON_EVENTS)
    }
