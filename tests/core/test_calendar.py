"""Working-day arithmetic, as properties (app/core/calendar.py; domain.md §3, JFS annex 3,
JFS 3.07). The worked examples are in tests/core/test_calendar_examples.py. No app, no database."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.calendar import (
    acknowledgement_due,
    is_working_day,
    next_working_day_on_or_after,
    nth_working_day_after,
    warm_calendar,
)

pytestmark = pytest.mark.pure
# Hypothesis runs here without its per-example deadline: a loaded machine (or the holidays
# package building a year on first use) would make it a timed assertion.

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))
counts = st.integers(min_value=1, max_value=25)


def working_days_between(after: date, up_to: date) -> int:
    """Working days in (after, up_to]."""
    return sum(
        is_working_day(after + timedelta(days=d)) for d in range(1, (up_to - after).days + 1)
    )


@settings(deadline=None)
@given(days)
def test_weekends_are_never_working_days_jfs_annex_3(day: date) -> None:
    """JFS annex 3: Saturday and Sunday are not working days."""
    if day.weekday() >= 5:
        assert not is_working_day(day)


@settings(deadline=None)
@given(days)
def test_next_working_day_on_or_after_jfs_3_07(day: date) -> None:
    """JFS 3.07: day 1 is the day of receipt if it is a working day, else the next one."""
    first = next_working_day_on_or_after(day)
    assert is_working_day(first)
    assert first >= day
    assert working_days_between(day - timedelta(days=1), first - timedelta(days=1)) == 0
    if is_working_day(day):
        assert first == day


@settings(deadline=None)
@given(days, counts)
def test_nth_working_day_after_counts_exactly_n_domain_3(day: date, n: int) -> None:
    """domain.md §3: the deadline is the N-th working day *after* the referral date."""
    deadline = nth_working_day_after(day, n)
    assert is_working_day(deadline)
    assert working_days_between(day, deadline) == n


@settings(deadline=None)
@given(days, counts)
def test_nth_working_day_after_is_monotonic_domain_3(day: date, n: int) -> None:
    assert nth_working_day_after(day, n) < nth_working_day_after(day, n + 1)
    assert nth_working_day_after(day, n) <= nth_working_day_after(day + timedelta(days=1), n)


@settings(deadline=None)
@given(days, counts)
def test_acknowledgement_due_counts_receipt_as_day_one_jfs_3_07(day: date, n: int) -> None:
    """JFS 3.07: "within N working days of receipt, the day of receipt is day 1"."""
    due = acknowledgement_due(day, n)
    first = next_working_day_on_or_after(day)
    assert is_working_day(due)
    assert working_days_between(first - timedelta(days=1), due) == n


@pytest.mark.parametrize("n", [0, -1])
def test_counts_below_one_are_refused_domain_3(n: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        nth_working_day_after(date(2026, 3, 2), n)
    with pytest.raises(ValueError, match="at least 1"):
        acknowledgement_due(date(2026, 3, 2), n)


def test_warm_calendar_loads_without_error() -> None:
    warm_calendar()
    assert not is_working_day(date(date.today().year, 12, 25))
