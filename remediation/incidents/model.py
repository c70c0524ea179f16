"""The Incident record and its state machine: which states exist and which moves between them are legal.

Pure data, no I/O. `remediation.incidents.decisions` and `.lifecycle` build new Incidents from old
ones through `transition`; the stores (`remediation.incidents.storage`, `remediation.store.incidents`)
persist them through `Incident.to_json` / `Incident.from_json`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from remediation.clock import timestamp
from remediation.plans import Plan


class IncidentState(enum.StrEnum):
    OPEN = "open"
    NEEDS_INPUT = "needs_input"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    ESCALATED = "escalated"
    UNDONE = "undone"


_S = IncidentState
TRANSITIONS: Mapping[IncidentState, frozenset[IncidentState]] = {
    _S.OPEN: frozenset({_S.AWAITING_APPROVAL, _S.NEEDS_INPUT, _S.APPROVED}),
    _S.NEEDS_INPUT: frozenset({_S.AWAITING_APPROVAL, _S.APPROVED, _S.REJECTED, _S.EXPIRED}),
    _S.AWAITING_APPROVAL: frozenset({_S.APPROVED, _S.REJECTED, _S.EXPIRED, _S.ESCALATED}),
    _S.ESCALATED: frozenset({_S.APPROVED, _S.REJECTED, _S.EXPIRED}),
    _S.APPROVED: frozenset({_S.EXECUTING, _S.FAILED}),
    _S.EXECUTING: frozenset({_S.SUCCEEDED, _S.FAILED}),
    _S.SUCCEEDED: frozenset({_S.UNDONE}),
}
"""Every legal move; a state absent from the keys has no way out."""

TERMINAL_FOR_GROUPING = frozenset({_S.SUCCEEDED, _S.FAILED, _S.REJECTED, _S.EXPIRED, _S.UNDONE})
"""A new alert of the same group never folds into an incident in one of these states."""

WAITING = frozenset({_S.NEEDS_INPUT, _S.AWAITING_APPROVAL, _S.ESCALATED})
"""States waiting for a person, with a deadline the timer enforces."""


class IllegalTransition(Exception):
    """A move the state machine forbids: a bug in the caller, never a user's mistake."""

    def __init__(self, *, incident_id: str, from_state: IncidentState, to_state: IncidentState) -> None:
        super().__init__(f"incident {incident_id}: illegal transition {from_state.value} -> {to_state.value}")
        self.incident_id = incident_id
        self.from_state = from_state
        self.to_state = to_state


def check_transition(*, incident_id: str, from_state: IncidentState, to_state: IncidentState) -> None:
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        raise IllegalTransition(incident_id=incident_id, from_state=from_state, to_state=to_state)


def new_incident_id(now: datetime) -> str:
    """`inc-` + milliseconds since the epoch (12 hex digits) + 8 random hex digits: short and time-sortable."""
    millis = int(now.timestamp() * 1000)
    return f"inc-{millis:012x}{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Approval:
    user: str
    at: datetime


@dataclass(frozen=True, slots=True)
class UndoRequest:
    """Who asked to undo a succeeded incident, when, and who approved it.

    `required` is how many approvals (from approvers other than the requester) the undo needs before
    it is queued: the step's own `min_approvals` when the undo re-grants access or lifts a
    containment, 0 when it does neither.
    """

    requester: str
    at: datetime
    required: int = 0
    approvals: tuple[Approval, ...] = ()

    @property
    def approved_by(self) -> tuple[str, ...]:
        return tuple(approval.user for approval in self.approvals)

    def progress(self) -> str:
        return f"{len(self.approvals)} of {self.required} undo approvals"

    def to_json(self) -> dict[str, Any]:
        return {
            "requester": self.requester,
            "at": timestamp(self.at),
            "required": self.required,
            "approvals": [{"user": a.user, "at": timestamp(a.at)} for a in self.approvals],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UndoRequest:
        return cls(
            requester=data["requester"],
            at=_parse_time(data["at"]),
            required=int(data.get("required", 0)),
            approvals=tuple(Approval(user=a["user"], at=_parse_time(a["at"])) for a in data.get("approvals", ())),
        )


@dataclass(frozen=True, slots=True)
class Incident:
    id: str
    playbook: str
    plan: Plan
    state: IncidentState
    signal: Mapping[str, Any]  # the first Signal's `summary()`, bounded in size
    group_key: str
    occurrences: int
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    updated_at: datetime
    deadline: datetime | None = None
    approvals: tuple[Approval, ...] = ()
    rejected_by: str | None = None
    requester: str | None = None  # a Slack user id for a manual run
    escalated: bool = False
    break_glass: bool = False  # auto-approved at timeout: must be reviewed afterwards
    inputs: Mapping[str, Any] = field(default_factory=dict)
    last_error: str | None = None
    completed_steps: int = 0
    step_results: tuple[Mapping[str, Any], ...] = ()  # each completed step's StepResult JSON (undo needs it)
    previews: tuple[Mapping[str, Any], ...] = ()  # per step: summary, target version bound by the approval
    undo_steps: int = 0  # steps undone so far, last first
    lease_until: datetime | None = None  # an executor is running the steps until then (renewed per step)
    undo_requested: bool = False  # an undo was approved and has not finished: the timer re-drives it
    undo: UndoRequest | None = None  # the latest undo request, its approvals included
    announced: bool = False  # its message was posted; until then the timer asks for it again
    recent_signals: tuple[str, ...] = ()  # latest folded Signals (`signal_mark`): a redelivery is not counted twice
    # Where the incident's image runs, measured at opening (`remediation.blast_radius`): JSON with `measured_at`.
    blast_radius: Mapping[str, Any] | None = None
    revision: int = field(default=0, compare=False)  # the store's count of writes: newer is larger, never a clock
    etag: str | None = field(default=None, compare=False, repr=False)

    @property
    def approved_by(self) -> tuple[str, ...]:
        return tuple(approval.user for approval in self.approvals)

    @property
    def required_approvals(self) -> int:
        return max(1, self.plan.approval.min_approvals)

    @property
    def undo_pending(self) -> bool:
        """An undo was asked for and still waits for approvals (nothing is queued yet)."""
        undo = self.undo
        return (
            self.state is IncidentState.SUCCEEDED
            and not self.undo_requested
            and undo is not None
            and len(undo.approvals) < undo.required
        )

    def approval_progress(self) -> str:
        """E.g. "1 of 2 approvals": what a responder reads under the buttons."""
        return f"{len(self.approvals)} of {self.required_approvals} approvals"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the etag is storage metadata and stays out)."""
        return {
            "id": self.id,
            "playbook": self.playbook,
            "plan": self.plan.to_json(),
            "state": self.state.value,
            "signal": dict(self.signal),
            "group_key": self.group_key,
            "occurrences": self.occurrences,
            "first_seen": timestamp(self.first_seen),
            "last_seen": timestamp(self.last_seen),
            "created_at": timestamp(self.created_at),
            "updated_at": timestamp(self.updated_at),
            "deadline": None if self.deadline is None else timestamp(self.deadline),
            "approvals": [{"user": a.user, "at": timestamp(a.at)} for a in self.approvals],
            "rejected_by": self.rejected_by,
            "requester": self.requester,
            "escalated": self.escalated,
            "break_glass": self.break_glass,
            "inputs": dict(self.inputs),
            "last_error": self.last_error,
            "completed_steps": self.completed_steps,
            "step_results": [dict(result) for result in self.step_results],
            "previews": [dict(preview) for preview in self.previews],
            "undo_steps": self.undo_steps,
            "lease_until": None if self.lease_until is None else timestamp(self.lease_until),
            "undo_requested": self.undo_requested,
            # A JSON string: the table store writes scalar columns as they are (see the report on
            # remediation/store/incident_rows._JSON_COLUMNS); from_json reads either form.
            "undo": None if self.undo is None else json.dumps(self.undo.to_json(), sort_keys=True),
            "announced": self.announced,
            "recent_signals": list(self.recent_signals),
            "blast_radius": None if self.blast_radius is None else dict(self.blast_radius),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, etag: str | None = None) -> Incident:
        deadline = data.get("deadline")
        return cls(
            id=data["id"],
            playbook=data["playbook"],
            plan=Plan.from_json(data["plan"]),
            state=IncidentState(data["state"]),
            signal=dict(data["signal"]),
            group_key=data["group_key"],
            occurrences=int(data["occurrences"]),
            first_seen=_parse_time(data["first_seen"]),
            last_seen=_parse_time(data["last_seen"]),
            created_at=_parse_time(data["created_at"]),
            updated_at=_parse_time(data["updated_at"]),
            deadline=None if deadline is None else _parse_time(deadline),
            approvals=tuple(Approval(user=a["user"], at=_parse_time(a["at"])) for a in data.get("approvals", ())),
            rejected_by=data.get("rejected_by"),
            requester=data.get("requester"),
            escalated=bool(data.get("escalated", False)),
            break_glass=bool(data.get("break_glass", False)),
            inputs=dict(data.get("inputs") or {}),
            last_error=data.get("last_error"),
            completed_steps=int(data.get("completed_steps", 0)),
            step_results=tuple(dict(result) for result in data.get("step_results") or ()),
            previews=tuple(dict(preview) for preview in data.get("previews") or ()),
            undo_steps=int(data.get("undo_steps", 0)),
            lease_until=None if data.get("lease_until") is None else _parse_time(data["lease_until"]),
            undo_requested=bool(data.get("undo_requested", False)),
            undo=_undo_from_json(data.get("undo")),
            announced=bool(data.get("announced", False)),
            recent_signals=tuple(data.get("recent_signals") or ()),
            blast_radius=_blast_radius_from_json(data.get("blast_radius")),
            etag=etag,
        )


def _undo_from_json(data: Any) -> UndoRequest | None:
    if not data:
        return None
    return UndoRequest.from_json(json.loads(data) if isinstance(data, str) else data)


def _blast_radius_from_json(data: Any) -> dict[str, Any] | None:
    if isinstance(data, str):  # a row written before the column was JSON-decoded
        data = json.loads(data) if data else None
    return dict(data) if isinstance(data, Mapping) else None


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def transition(incident: Incident, to_state: IncidentState, *, at: datetime, **changes: Any) -> Incident:
    """`incident` moved to `to_state` at `at` (with further field `changes`); raises IllegalTransition.

    Leaving the waiting states clears the deadline unless `changes` sets one.
    """
    check_transition(incident_id=incident.id, from_state=incident.state, to_state=to_state)
    if to_state not in WAITING:
        changes.setdefault("deadline", None)
    return dataclasses.replace(incident, state=to_state, updated_at=at, **changes)
