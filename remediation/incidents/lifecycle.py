"""Birth, grouping and execution of an incident: the moves that are not a person's decision.

Pure functions. Stores call `open_incident`, `can_fold` and `fold` inside `open_or_fold`; the
executor moves an approved incident through `start_execution`, `complete_step`, `succeed`, `fail`
and `mark_undone` with the store's `update`. Decisions of people live in `.decisions`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from remediation.audit import truncate_json
from remediation.incidents.model import TERMINAL_FOR_GROUPING, Incident, IncidentState, new_incident_id, transition
from remediation.plans import ApprovalMode, Plan
from remediation.signals.model import Signal

_S = IncidentState
SIGNAL_MAX_CHARS = 16_000  # the stored view of the first signal; far below a Table property's 64 KiB
ERROR_MAX_CHARS = 4_000


def open_incident(
    *, plan: Plan, signal: Signal, now: datetime, requester: str | None = None, incident_id: str | None = None
) -> Incident:
    """A new incident in its initial state.

    Auto mode with nothing missing: approved (the loader allows auto for non-destructive steps
    only). Missing parameters: needs_input. Otherwise awaiting_approval. A waiting incident's
    deadline is `now` + the policy's timeout.
    """
    opened = Incident(
        id=incident_id or new_incident_id(now),
        playbook=plan.playbook,
        plan=plan,
        state=_S.OPEN,
        signal=truncate_json(signal.summary(), max_chars=SIGNAL_MAX_CHARS),
        group_key=plan.group_key,
        occurrences=1,
        first_seen=now,
        last_seen=now,
        created_at=now,
        updated_at=now,
        requester=requester,
    )
    deadline = now + plan.approval.timeout
    if plan.missing:
        return transition(opened, _S.NEEDS_INPUT, at=now, deadline=deadline)
    if plan.approval.mode is ApprovalMode.AUTO:
        return transition(opened, _S.APPROVED, at=now)
    return transition(opened, _S.AWAITING_APPROVAL, at=now, deadline=deadline)


def can_fold(incident: Incident, *, plan: Plan, now: datetime) -> bool:
    """True when a new alert planned as `plan` at `now` is one more occurrence of `incident`.

    An empty group key never groups.
    """
    return (
        bool(plan.group_key)
        and incident.group_key == plan.group_key
        and incident.state not in TERMINAL_FOR_GROUPING
        and now - incident.last_seen <= plan.group_window
    )


RECENT_SIGNALS = 128  # folded Signals remembered per incident: more than one batch's fold (100)


def signal_mark(signal_id: str) -> str:
    """How an incident remembers a folded Signal: 16 hex digits of its id's hash (a short, fixed
    size, so remembering a whole batch stays small in the incident's row)."""
    return hashlib.blake2b(signal_id.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def fold(incident: Incident, *, now: datetime, signal_ids: Sequence[str] = ()) -> Incident:
    """One more occurrence per Signal of `signal_ids` (one, when none is named); out-of-order
    arrivals never move `last_seen` back.

    Idempotent per Signal id: the opening Signal or a recently folded one, delivered again (a
    retry after a partial open, an at-least-once redelivery, a batch handled again), is not
    counted again; an incident that counts none of them is returned as it is.
    """
    if not signal_ids:
        new: list[str] = []
        occurrences = 1
    else:
        known = {*incident.recent_signals, signal_mark(str(incident.signal.get("id", "")))}
        new = []
        for signal_id in signal_ids:
            mark = signal_mark(signal_id)
            if mark not in known and signal_id not in known:  # plain ids: rows written before marks
                known.add(mark)
                new.append(mark)
        occurrences = len(new)
        if not occurrences:
            return incident
    return dataclasses.replace(
        incident,
        occurrences=incident.occurrences + occurrences,
        last_seen=max(incident.last_seen, now),
        updated_at=max(incident.updated_at, now),
        recent_signals=(*incident.recent_signals, *new)[-RECENT_SIGNALS:],
    )


def start_execution(incident: Incident, *, at: datetime) -> Incident:
    return transition(incident, _S.EXECUTING, at=at)


def complete_step(incident: Incident, *, step: int, at: datetime, result: Mapping[str, Any] | None = None) -> Incident:
    """Record that step `step` (0-based) finished, with its result; recording it again changes nothing."""
    if incident.state is not _S.EXECUTING:
        raise ValueError(f"incident {incident.id} is {incident.state.value}, not executing: step {step} not recorded")
    if step + 1 <= incident.completed_steps:
        return incident
    results = (*incident.step_results, dict(result or {}))
    return dataclasses.replace(incident, completed_steps=step + 1, step_results=results, updated_at=at)


def succeed(incident: Incident, *, at: datetime) -> Incident:
    return transition(incident, _S.SUCCEEDED, at=at, last_error=None)


def fail(incident: Incident, *, at: datetime, error: str) -> Incident:
    """Approved or executing work that ended in an error (a poison message included)."""
    message = error if len(error) <= ERROR_MAX_CHARS else error[:ERROR_MAX_CHARS] + "…[truncated]"
    return transition(incident, _S.FAILED, at=at, last_error=message)


def mark_undone(incident: Incident, *, at: datetime) -> Incident:
    return transition(incident, _S.UNDONE, at=at)


GUARD_PREFIX = "guard '"  # how a GuardRefused names its rule (remediation.actions.kubernetes.guards)


def guard_refusal(incident: Incident) -> str | None:
    """Why a guard rail refused one of the incident's steps at preview, or None.

    E.g. "step 1 (kubernetes.delete_rbac_object) is refused by guard 'cluster-admin': ...". Such an
    incident can never run: the same guard is checked again before the write.
    """
    for preview in incident.previews:
        error = preview.get("error")
        if isinstance(error, str) and error.startswith(GUARD_PREFIX):
            index = int(preview.get("step", 0))
            steps = incident.plan.steps
            action = steps[index].action if 0 <= index < len(steps) else "?"
            return f"step {index + 1} ({action}) is refused by {error}"
    return None


def refuse_guarded(incident: Incident, *, at: datetime) -> Incident:
    """Close an incident whose preview a guard rail refused, saying why, before anyone approves it.

    A waiting incident is rejected by the system (`rejected_by` stays None); one approved by policy
    (mode auto) fails. Anything else, or an incident no guard refused, is returned unchanged.
    """
    refusal = guard_refusal(incident)
    if refusal is None:
        return incident
    message = f"{refusal}; it cannot be approved: remediate by hand if needed"
    if incident.state in (_S.NEEDS_INPUT, _S.AWAITING_APPROVAL, _S.ESCALATED):
        return transition(incident, _S.REJECTED, at=at, last_error=message[:ERROR_MAX_CHARS])
    if incident.state is _S.APPROVED:
        return fail(incident, at=at, error=message)
    return incident
