"""What a delivery carries: the change feed's event, its non-personal fields only.

An allow-list, not a deny-list, so that a field a later event type adds is not sent until
someone decides it is safe: status, dates, codes and enumerated reasons, never names, NINO,
contact details or free text (a note, a back-out's written reason). Built when the delivery
is sent, from the event as it stands, so an erasure before then (GEN 136-137) is honoured.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from app.core.clock import as_utc
from app.referrals.states import CancellationReason, RejectionReason


class FeedEvent(Protocol):
    """What a delivery reads of a referral event (``referrals.service.events_by_id``)."""

    id: int
    type: str
    referral_id: str
    provider_id: str
    status: str
    referral_version: int
    occurred_at: datetime
    data: dict[str, Any]


DELIVERED_FIELDS = frozenset(
    {
        "programme",
        "referral_date",
        "re_referral",
        "start_date",
        "initial_meeting_date",
        "end_code",
        "end_date",
        "last_engagement_date",
        "policy_reference",
        "provider_reference",
        "backed_out_start_date",
        "cancel_due_by",
        "as_of",
        "changed_fields",  # participant changes: the names of the fields, never their values
        "erased_at",
    }
)
# ``reason`` is sent only when it is one of the coded reasons; a back-out's is free text.
CODED_REASONS = frozenset(str(r) for r in (*RejectionReason, *CancellationReason))


def delivery_data(event: FeedEvent) -> dict[str, Any]:
    data: dict[str, Any] = {
        "status": event.status,
        "version": event.referral_version,
        "provider_id": event.provider_id,
    }
    for name, value in event.data.items():
        if name in DELIVERED_FIELDS and value is not None:
            data[name] = value
    reason = event.data.get("reason")
    if isinstance(reason, str) and reason in CODED_REASONS:
        data["reason"] = reason
    return data


def delivery_body(event: FeedEvent) -> str:
    """The JSON text that is signed and sent, exactly."""
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "referral_id": event.referral_id,
            "occurred_at": as_utc(event.occurred_at).isoformat().replace("+00:00", "Z"),
            "data": delivery_data(event),
        },
        separators=(",", ":"),
        sort_keys=True,
    )
