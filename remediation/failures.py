"""The two kinds of failure that decide retries, for every call to the outside world.

`TransientFailure` (429, 5xx, connection errors; may carry the server's Retry-After as `delay`) is
worth retrying; `PermanentFailure` (4xx, bad input, a guard rail, a changed target) never is. The
actions (`remediation.actions.runtime` adds the action-specific kinds), `remediation.retry` and the
push policy speak these; the message is always what a responder reads.
"""

from __future__ import annotations


class ActionFailure(Exception):
    """A step that did not happen; the message is what a responder reads."""


class PermanentFailure(ActionFailure):
    """Never retried: the same call would fail the same way."""


class TransientFailure(ActionFailure):
    """Worth retrying, after `delay` seconds when the server said so (Retry-After)."""

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class InProgressElsewhere(TransientFailure):
    """Another live worker holds the incident's lease: this delivery must come back later, not vanish."""
