"""The IncidentStore protocol and `InMemoryIncidentStore`, the in-process store with the table's semantics.

`remediation.store.incidents.TableIncidentStore` is the durable one. Both apply the same pure
functions (`lifecycle.open_incident/can_fold/fold`, the decisions passed to `update`) and audit each
change with `history.describe` into an `AuditLog`, so only storage differs. Tests of the pure
layer, the CLI and the benchmarks use the in-memory store.

Live incidents (`LIVE`: not yet closed) are what the minute timer and App Home read, through
`live()` and `due()`; `list()` reads every stored incident and is for the CLI and tests. `prune`
drops closed incidents past the retention; their audit chains stay.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Protocol

from remediation.audit import AuditLog, InMemoryAuditLog
from remediation.clock import timestamp
from remediation.incidents.history import describe
from remediation.incidents.lifecycle import can_fold, fold, open_incident
from remediation.incidents.model import (
    TERMINAL_FOR_GROUPING,
    WAITING,
    Incident,
    IncidentState,
    check_transition,
)
from remediation.plans import Plan
from remediation.signals.model import Signal

Change = Callable[[Incident], Incident]

LIVE = frozenset(IncidentState) - TERMINAL_FOR_GROUPING
"""open, needs_input, awaiting_approval, escalated, approved, executing: not closed yet. No move
leads from a closed state back to one of these (a succeeded incident may still become undone)."""


class UnknownIncident(LookupError):
    def __init__(self, incident_id: str) -> None:
        super().__init__(f"no incident {incident_id}")
        self.incident_id = incident_id


class IncidentStore(Protocol):
    """Incidents with race-safe grouping and updates; every change is audited by the store."""

    def open_or_fold(
        self, *, plan: Plan, signal: Signal, now: datetime, requester: str | None = None
    ) -> tuple[Incident, bool]:
        """Fold into the open incident of `plan.group_key` (True: a new one was opened instead).

        A manual run (`requester` set) always opens its own incident.
        """
        ...

    def open_or_fold_all(self, *, plan: Plan, signals: Sequence[Signal], now: datetime) -> tuple[Incident, bool]:
        """`open_or_fold` for Signals planned alike (one group key), in one write: the group's open
        incident counts each Signal it has not counted yet, or the first Signal opens a new one that
        counts the others too (True)."""
        ...

    def get(self, incident_id: str) -> Incident | None: ...

    def list(self, *, states: Iterable[IncidentState] | None = None) -> builtins.list[Incident]:
        """Incidents oldest first, optionally only those in `states`."""
        ...

    def live(self, *, states: Iterable[IncidentState] | None = None) -> builtins.list[Incident]:
        """The live incidents (`is_live`), oldest first, optionally only those in `states`; reads
        nothing of the closed ones, however many are stored."""
        ...

    def due(self, now: datetime) -> builtins.list[Incident]:
        """Waiting incidents (needs_input, awaiting_approval, escalated) whose deadline is <= `now`,
        earliest deadline first; like `live`, reads nothing of the closed ones."""
        ...

    def prune(self, *, before: datetime) -> int:
        """Delete closed incidents last updated before `before` (and the group pointers naming
        them); never a live one, never an audit record. Returns how many were deleted."""
        ...

    def flush_pending_audit(self) -> int:
        """Append audit records a crashed writer left pending; how many incidents had some."""
        ...

    def update(self, incident: Incident, change: Change, *, actor: str | None = None) -> Incident:
        """Apply `change` to the latest stored state of `incident`, atomically, and audit it.

        When another writer won meanwhile, `change` runs again on the fresh state (so it may raise
        DecisionRefused then). A change that returns its input unchanged writes nothing.
        Raises UnknownIncident.
        """
        ...


def checked(old: Incident, new: Incident) -> Incident:
    """`new` if it may replace `old` in storage: same id, and a legal move if the state changed."""
    if new.id != old.id:
        raise ValueError(f"a change of incident {old.id} returned incident {new.id}")
    if new.state is not old.state:
        check_transition(incident_id=old.id, from_state=old.state, to_state=new.state)
    return new


def is_live(incident: Incident) -> bool:
    """Not closed yet, or succeeded with an undo asked for and not finished (the timer re-drives it)."""
    return incident.state in LIVE or incident.undo_requested


def is_due(incident: Incident, now: datetime) -> bool:
    return incident.state in WAITING and incident.deadline is not None and incident.deadline <= now


def deadline_order(incident: Incident) -> tuple[str, str]:
    """Sort key of `due` results: earliest deadline first."""
    return (timestamp(incident.deadline) if incident.deadline else "", incident.id)


class InMemoryIncidentStore:
    """An IncidentStore in process memory; one lock makes every operation atomic."""

    def __init__(self, *, audit: AuditLog | None = None) -> None:
        self.audit: AuditLog = audit if audit is not None else InMemoryAuditLog()
        self._incidents: dict[str, Incident] = {}
        self._groups: dict[str, str] = {}  # group key -> id of its latest incident
        self._lock = threading.Lock()

    def open_or_fold(
        self, *, plan: Plan, signal: Signal, now: datetime, requester: str | None = None
    ) -> tuple[Incident, bool]:
        return self._open_or_fold(plan=plan, signals=(signal,), now=now, requester=requester)

    def open_or_fold_all(self, *, plan: Plan, signals: Sequence[Signal], now: datetime) -> tuple[Incident, bool]:
        return self._open_or_fold(plan=plan, signals=signals, now=now, requester=None)

    def _open_or_fold(
        self, *, plan: Plan, signals: Sequence[Signal], now: datetime, requester: str | None
    ) -> tuple[Incident, bool]:
        ids = [signal.id for signal in signals]
        with self._lock:
            grouped = bool(plan.group_key) and requester is None
            current = self._incidents.get(self._groups.get(plan.group_key, "")) if grouped else None
            if current is not None and can_fold(current, plan=plan, now=now):
                folded = fold(current, now=now, signal_ids=ids)
                if folded is not current:
                    folded = dataclasses.replace(folded, revision=current.revision + 1)
                    self._incidents[folded.id] = folded
                return folded, False
            opened = open_incident(plan=plan, signal=signals[0], now=now, requester=requester)
            if len(ids) > 1:
                opened = fold(opened, now=now, signal_ids=ids[1:])
            opened = dataclasses.replace(opened, revision=1)
            self._incidents[opened.id] = opened
            if grouped:
                self._groups[plan.group_key] = opened.id
            self._audit(None, opened, actor=None)
            return opened, True

    def get(self, incident_id: str) -> Incident | None:
        with self._lock:
            return self._incidents.get(incident_id)

    def live(self, *, states: Iterable[IncidentState] | None = None) -> builtins.list[Incident]:
        return [incident for incident in self.list(states=states) if is_live(incident)]

    def due(self, now: datetime) -> builtins.list[Incident]:
        return sorted((incident for incident in self.live() if is_due(incident, now)), key=deadline_order)

    def prune(self, *, before: datetime) -> int:
        with self._lock:
            old = {i.id for i in self._incidents.values() if not is_live(i) and i.updated_at < before}
            for incident_id in old:
                del self._incidents[incident_id]
            self._groups = {key: latest for key, latest in self._groups.items() if latest not in old}
        return len(old)

    def update(self, incident: Incident, change: Change, *, actor: str | None = None) -> Incident:
        with self._lock:
            current = self._incidents.get(incident.id)
            if current is None:
                raise UnknownIncident(incident.id)
            new = checked(current, change(current))
            if new == current:
                return current
            new = dataclasses.replace(new, revision=current.revision + 1)
            self._incidents[new.id] = new
            self._audit(current, new, actor=actor)
            return new

    def flush_pending_audit(self) -> int:
        return 0  # every change is audited under the same lock: nothing is ever left pending

    def list(self, *, states: Iterable[IncidentState] | None = None) -> builtins.list[Incident]:
        wanted = None if states is None else frozenset(states)
        with self._lock:
            chosen = [i for i in self._incidents.values() if wanted is None or i.state in wanted]
        return sorted(chosen, key=lambda incident: incident.id)

    def _audit(self, old: Incident | None, new: Incident, *, actor: str | None) -> None:
        event = describe(old, new, actor=actor)
        if event is not None:
            self.audit.append(incident_id=new.id, event=event)
