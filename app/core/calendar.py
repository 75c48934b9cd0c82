"""Working days (domain.md §3, JFS annex 3).

A working day is any day other than Saturday, Sunday or a public holiday in England,
Scotland or Wales. Our reading: a holiday in any one of the three nations is not a working
day. Holidays come from the ``holidays`` package, never from a hand-kept table.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

# ISO 3166-2 subdivisions the package uses for Great Britain's nations.
_NATIONS = ("ENG", "SCT", "WLS")


@lru_cache(maxsize=256)
def _holidays_in(year: int) -> frozenset[date]:
    days: set[date] = set()
    for nation in _NATIONS:
        days.update(holidays.country_holidays("GB", subdiv=nation, years=year).keys())
    return frozenset(days)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _holidays_in(day.year)


def next_working_day_on_or_after(day: date) -> date:
    while not is_working_day(day):
        day += timedelta(days=1)
    return day


def nth_working_day_after(day: date, n: int) -> date:
    """The n-th working day after ``day`` (domain.md §3, "within N working days of the date
    the referral was made"): referral Monday 2 March 2026, n = 8 → Thursday 12 March."""
    if n < 1:
        raise ValueError("n must be at least 1")
    count = 0
    while count < n:
        day += timedelta(days=1)
        if is_working_day(day):
            count += 1
    return day


def acknowledgement_due(referral_date: date, working_days: int) -> date:
    """Last day to acknowledge (JFS 3.07): "within 2 working days of receipt, the day of
    receipt is day 1". Day 1 is the referral date if it is a working day, else the next
    working day; the deadline is day ``working_days``."""
    if working_days < 1:
        raise ValueError("working_days must be at least 1")
    day_one = next_working_day_on_or_after(referral_date)
    if working_days == 1:
        return day_one
    return nth_working_day_after(day_one, working_days - 1)


def warm_calendar() -> None:
    """Load this year's and next year's holidays at start-up, not on the first request."""
    year = date.today().year
    _holidays_in(year)
    _holidays_in(year + 1)
