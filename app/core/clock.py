"""The service's one clock.

Every rule reads "now" and "today" from here. Dates are UK local dates (Europe/London,
domain.md §3). In sandbox mode a harness may stand the clock still at an instant; that
instant lives in the database so that every replica behind a load balancer sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")


def real_now() -> datetime:
    """Real time, for token expiry and leases: never the sandbox clock."""
    return datetime.now(UTC)


def uk_date(instant: datetime) -> date:
    """The UK local date of an instant."""
    return as_utc(instant).astimezone(UK).date()


def as_utc(instant: datetime) -> datetime:
    """An aware UTC datetime (SQLite hands back naive values, which we store as UTC)."""
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Clock:
    """A fixed reading of the clock for one unit of work (a request or a job run)."""

    now: datetime

    @property
    def today(self) -> date:
        return uk_date(self.now)

    @classmethod
    def at(cls, instant: datetime) -> Clock:
        return cls(now=as_utc(instant))
