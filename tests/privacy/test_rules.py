"""What erasure keeps of an event's data (app/privacy/rules.py; GEN 136-137, domain.md §10),
as a pure function. No app, no database."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.privacy.rules import (
    CODED_REASON_EVENTS,
    NON_PERSONAL_EVENT_FIELDS,
    PERSONAL_EVENT_FIELDS,
    erased_event_data,
    shows_personal_data,
)
from app.referrals.states import EventType

pytestmark = pytest.mark.pure

FIELDS = st.sampled_from(sorted(NON_PERSONAL_EVENT_FIELDS | PERSONAL_EVENT_FIELDS | {"name"}))
DATA = st.dictionaries(
    st.one_of(FIELDS, st.text(max_size=12)), st.one_of(st.none(), st.integers(), st.text())
)
TYPES = st.sampled_from([str(t) for t in EventType])


def test_the_lists_do_not_overlap() -> None:
    assert NON_PERSONAL_EVENT_FIELDS.isdisjoint(PERSONAL_EVENT_FIELDS)


def test_a_coded_reason_stays_and_free_text_goes() -> None:
    for event_type in CODED_REASON_EVENTS:
        assert erased_event_data(event_type, {"reason": "other", "note": "x"}) == {
            "reason": "other"
        }
    assert erased_event_data(EventType.backed_out, {"reason": "Ada's start was wrong"}) == {}
    assert erased_event_data(EventType.erased, {"reason": "asked"}) == {}


@settings(deadline=None)
@given(event_type=TYPES, data=DATA)
def test_only_listed_fields_survive_and_their_values_are_untouched(
    event_type: str, data: dict[str, object]
) -> None:
    kept = erased_event_data(event_type, data)
    assert kept.items() <= data.items()
    for key in kept:
        assert key in NON_PERSONAL_EVENT_FIELDS or (
            key == "reason" and event_type in CODED_REASON_EVENTS
        )
    assert "note" not in kept
    for key in NON_PERSONAL_EVENT_FIELDS & data.keys():
        assert key in kept


@settings(deadline=None)
@given(event_type=TYPES, data=DATA)
def test_erasing_twice_changes_nothing_more(event_type: str, data: dict[str, object]) -> None:
    once = erased_event_data(event_type, data)
    assert erased_event_data(event_type, once) == once


def test_a_note_shows_the_participant_and_codes_do_not_gen_71() -> None:
    assert shows_personal_data(str(EventType.rejected), {"reason": "other", "note": "Leeds"})
    assert not shows_personal_data(str(EventType.rejected), {"reason": "other"})
    assert shows_personal_data(str(EventType.backed_out), {"reason": "Typed in error"})
    assert not shows_personal_data(str(EventType.started), {"start_date": "2026-03-02"})


@settings(deadline=None)
@given(event_type=TYPES, data=DATA)
def test_an_event_shows_personal_data_exactly_when_erasure_would_change_it(
    event_type: str, data: dict[str, object]
) -> None:
    """GEN 71 and GEN 136 read the same list: what the feed records as a read is what erasure
    removes, and an erased event shows no one."""
    assert shows_personal_data(event_type, data) == (erased_event_data(event_type, data) != data)
    assert not shows_personal_data(event_type, erased_event_data(event_type, data))
