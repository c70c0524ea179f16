"""The Notifier protocol: how the engine tells people about incidents, without knowing about Slack.

`bot/` implements it with Block Kit messages; `LoggingNotifier` (the default) writes one structured
log line per call, so the engine, the CLI and the benchmarks run with no Slack at all;
`RecordingNotifier` keeps the calls for tests. Callers pass the Incident as the store returned it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from remediation.incidents import Incident

logger = logging.getLogger(__name__)


class Notifier(Protocol):
    def incident_opened(self, incident: Incident) -> None: ...

    def incident_updated(self, incident: Incident) -> None: ...

    def approval_needed(self, incident: Incident) -> None: ...

    def step_progress(self, incident: Incident, *, step: int, message: str) -> None: ...

    def channel_post(self, incident: Incident, *, channel: str, text: str) -> None:
        """`text` posted in `channel`, a channel other than the incident's own, linking back to the incident."""
        ...

    def incident_finished(self, incident: Incident) -> None: ...


def _fields(incident: Incident, **more: Any) -> dict[str, Any]:
    return {"incident_id": incident.id, "state": incident.state.value, "playbook": incident.playbook, **more}


class LoggingNotifier:
    """One log line per notification, with the incident id and state as `extra` fields."""

    def incident_opened(self, incident: Incident) -> None:
        logger.info("incident opened: %s", incident.id, extra=_fields(incident, occurrences=incident.occurrences))

    def incident_updated(self, incident: Incident) -> None:
        logger.info("incident updated: %s is %s", incident.id, incident.state.value, extra=_fields(incident))

    def approval_needed(self, incident: Incident) -> None:
        logger.info(
            "approval needed: %s (%s)",
            incident.id,
            incident.approval_progress(),
            extra=_fields(incident, deadline=incident.deadline.isoformat() if incident.deadline else None),
        )

    def step_progress(self, incident: Incident, *, step: int, message: str) -> None:
        logger.info("incident %s step %d: %s", incident.id, step + 1, message, extra=_fields(incident, step=step))

    def channel_post(self, incident: Incident, *, channel: str, text: str) -> None:
        logger.info("incident %s post in %s: %s", incident.id, channel, text, extra=_fields(incident, channel=channel))

    def incident_finished(self, incident: Incident) -> None:
        level = logging.WARNING if incident.last_error else logging.INFO
        logger.log(
            level,
            "incident finished: %s is %s",
            incident.id,
            incident.state.value,
            extra=_fields(incident, error=incident.last_error, break_glass=incident.break_glass),
        )


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    incident: Incident
    step: int | None = None
    message: str | None = None
    channel: str | None = None


@dataclass
class RecordingNotifier:
    """Keeps every call in order, for tests; thread-safe."""

    calls: list[Notification] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def incident_opened(self, incident: Incident) -> None:
        self._record(Notification("incident_opened", incident))

    def incident_updated(self, incident: Incident) -> None:
        self._record(Notification("incident_updated", incident))

    def approval_needed(self, incident: Incident) -> None:
        self._record(Notification("approval_needed", incident))

    def step_progress(self, incident: Incident, *, step: int, message: str) -> None:
        self._record(Notification("step_progress", incident, step=step, message=message))

    def channel_post(self, incident: Incident, *, channel: str, text: str) -> None:
        self._record(Notification("channel_post", incident, message=text, channel=channel))

    def incident_finished(self, incident: Incident) -> None:
        self._record(Notification("incident_finished", incident))

    def methods(self) -> list[str]:
        with self._lock:
            return [call.method for call in self.calls]

    def _record(self, notification: Notification) -> None:
        with self._lock:
            self.calls.append(notification)
