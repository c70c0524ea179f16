"""Time, once: the wall clock every component defaults to, and the one text form timestamps take.

Every class that reads the time takes a `clock` argument defaulting to `utcnow`, so tests move time
by hand and nothing sleeps. `timestamp` is the form stored in tables and audit records: fixed-width
UTC ISO-8601, so lexicographic order is chronological order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """A fixed-width UTC ISO-8601 text: lexicographic order is chronological order."""
    if moment.tzinfo is None:
        raise ValueError(f"timezone-aware datetime required, got naive {moment.isoformat()}")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
