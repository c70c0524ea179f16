"""Approved work for the executor: the `WorkQueue` the engine enqueues on, and the message it sends.

Neighbours: the engine enqueues an incident id when an incident becomes approved (by people, by
`mode: auto`, or break-glass at timeout) or an undo is asked for; the queue-triggered executor
(`functions/executor.py`) takes it. `remediation.store.work.StorageWorkQueue` is the Azure queue;
`InMemoryWorkQueue` has the same interface for tests and the CLI.

A message is `{"incident_id", "kind"}` plus, when a span is current, the W3C `traceparent` (and
`tracestate`) of the incident's journey, which the executor continues (`remediation.telemetry`).
"""

from __future__ import annotations

import json
import threading
from typing import Protocol

from remediation import telemetry


class WorkQueue(Protocol):
    def enqueue(self, *, incident_id: str, kind: str = "execute") -> None:
        """Ask the executor to run (`execute`) or undo (`undo`) an incident."""
        ...


def work_message(*, incident_id: str, kind: str) -> str:
    return json.dumps({"incident_id": incident_id, "kind": kind, **telemetry.carrier()}, sort_keys=True)


class InMemoryWorkQueue:
    def __init__(self) -> None:
        self.messages: list[str] = []
        self._lock = threading.Lock()

    def enqueue(self, *, incident_id: str, kind: str = "execute") -> None:
        with self._lock:
            self.messages.append(work_message(incident_id=incident_id, kind=kind))
