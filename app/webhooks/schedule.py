"""When a failed delivery is tried again (api-contract.md, Webhooks): exponential backoff on
the service clock for at least 24 hours, then ``failed``."""

from __future__ import annotations

from datetime import datetime, timedelta

RETRY_WINDOW = timedelta(hours=24)
FIRST_BACKOFF = timedelta(seconds=30)
LONGEST_BACKOFF = timedelta(hours=4)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: 30 s, 1 min, 2 min, ... up to 4 h."""
    doublings: int = min(max(attempts - 1, 0), 20)
    return min(FIRST_BACKOFF * (1 << doublings), LONGEST_BACKOFF)


def next_attempt_after_failure(
    first_attempt_at: datetime, now: datetime, attempts: int
) -> datetime | None:
    """The next attempt, or None when the delivery has been retried for the whole window."""
    if now - first_attempt_at >= RETRY_WINDOW:
        return None
    return now + backoff(attempts)
