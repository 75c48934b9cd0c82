"""Working days (domain.md §3, JFS annex 3 and JFS 3.07)."""

from __future__ import annotations

from datetime import date

import pytest

from app.core.calendar import acknowledgement_due, is_working_day, nth_working_day_after

pytestmark = pytest.mark.pure  # no app, no database


@pytest.mark.parametrize(
    ("referral", "n", "expected"),
    [
        # domain.md §3 examples.
        (date(2026, 3, 2), 8, date(2026, 3, 12)),
        (date(2026, 4, 1), 2, date(2026, 4, 7)),  # Good Friday 3 April, Easter Monday 6 April
        # Christmas: 25, 26 Dec 2026 fall Fri/Sat; Boxing Day substitute Monday 28 Dec.
        (date(2026, 12, 23), 2, date(2026, 12, 29)),
        # Scotland's 2 January holiday counts (a holiday in any nation): 2 Jan 2026 is Friday.
        (date(2025, 12, 31), 1, date(2026, 1, 5)),
        # A weekend referral counts from the next working day.
        (date(2026, 3, 7), 1, date(2026, 3, 9)),
        # Scotland's St Andrew's Day substitute (Monday 30 Nov 2026) is not a working day.
        (date(2026, 11, 27), 1, date(2026, 12, 1)),
    ],
)
def test_nth_working_day_after(referral: date, n: int, expected: date) -> None:
    """domain.md §3: the deadline is the N-th working day *after* the referral date."""
    assert nth_working_day_after(referral, n) == expected


@pytest.mark.parametrize(
    ("referral", "expected"),
    [
        # domain.md §3 / JFS 3.07: the day of receipt is day 1.
        (date(2026, 3, 6), date(2026, 3, 9)),  # Friday → Monday
        (date(2026, 4, 2), date(2026, 4, 7)),  # Thursday before Easter → Tuesday after
        (date(2026, 3, 2), date(2026, 3, 3)),  # Monday → Tuesday
        (date(2026, 3, 7), date(2026, 3, 10)),  # Saturday: day 1 is Monday, due Tuesday
        (date(2026, 12, 24), date(2026, 12, 29)),  # Christmas Eve → after Boxing Day (sub)
        (date(2026, 12, 31), date(2027, 1, 5)),  # New Year's Day, then Scotland's 2 Jan (sub)
    ],
)
def test_acknowledgement_due(referral: date, expected: date) -> None:
    """JFS 3.07: acknowledge within 2 working days of receipt, the day of receipt is day 1."""
    assert acknowledgement_due(referral, 2) == expected


@pytest.mark.parametrize(
    ("day", "working"),
    [
        (date(2026, 1, 2), False),  # Scotland only (JFS annex 3: any of the three nations)
        (date(2026, 8, 3), False),  # Scotland's summer bank holiday
        (date(2026, 8, 31), False),  # England and Wales' summer bank holiday
        (date(2026, 3, 17), True),  # St Patrick's Day: Northern Ireland only, not GB
        (date(2026, 7, 13), True),  # Battle of the Boyne (NI, observed): not GB
        (date(2026, 12, 25), False),
        (date(2026, 3, 14), False),  # Saturday
        (date(2026, 3, 16), True),
    ],
)
def test_is_working_day(day: date, working: bool) -> None:
    """domain.md §3: working day = not Saturday, Sunday or a public holiday in E, S or W."""
    assert is_working_day(day) is working


def test_rejects_non_positive_counts() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        nth_working_day_after(date(2026, 3, 2), 0)
    with pytest.raises(ValueError, match="at least 1"):
        acknowledgement_due(date(2026, 3, 2), 0)
