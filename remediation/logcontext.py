"""The incident a log line belongs to, on every line written while the engine works on it.

`incident_context(id)` marks the current thread of work; `IncidentFilter` on a handler gives every
record it handles inside that mark an `incident_id` (unless the line named one itself), including
lines the SDKs write underneath, so one query over the logs tells an incident's story.
`install()` puts the filter on the root logger's handlers (the Functions worker's among them); the
composition root calls it once, never at import.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar

_current: ContextVar[str | None] = ContextVar("incident_id", default=None)


@contextlib.contextmanager
def incident_context(incident_id: str) -> Iterator[None]:
    token = _current.set(incident_id)
    try:
        yield
    finally:
        _current.reset(token)


class IncidentFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        incident_id = _current.get()
        if incident_id is not None and not hasattr(record, "incident_id"):
            record.incident_id = incident_id
        return True


def install() -> None:
    """Add the filter to each handler of the root logger that lacks one."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, IncidentFilter) for existing in handler.filters):
            handler.addFilter(IncidentFilter())
