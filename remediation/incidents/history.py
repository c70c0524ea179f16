"""How a change to an incident reads in the audit trail: one AuditEvent per stored change.

`describe(old, new)` is pure and shared by both incident stores, so a decision is audited the same
way in memory and in Azure Tables. A change with nothing to say (a folded alert, which only counts
`occurrences`) yields None: a storm of a thousand alerts is one "opened" record, not a thousand.
A break-glass approval names the rule that approved it as its actor (`break_glass_actor`), never
plain "system", so a reviewer tells it from every other step the system takes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from remediation.audit import AuditEvent
from remediation.clock import timestamp
from remediation.incidents.model import Incident, IncidentState

SYSTEM_ACTOR = "system"
_QUIET_FIELDS = frozenset({"occurrences", "last_seen", "updated_at"})
_S = IncidentState


def describe(old: Incident | None, new: Incident, *, actor: str | None = None) -> AuditEvent | None:
    """The audit event for `old` -> `new` (`old` None: the incident was just opened).

    The actor is the person a decision names (approver, rejecter, requester), or for a break-glass
    approval the playbook's policy (`break_glass_actor`), else `actor`, else "system".
    """
    if old is None:
        return AuditEvent(
            kind="opened",
            actor=new.requester or actor or SYSTEM_ACTOR,
            at=new.created_at,
            from_state=_S.OPEN.value,
            to_state=new.state.value,
            details=_opening_details(new),
        )
    classified = _classify(old, new)
    if classified is None:
        return None
    kind, decided_by, details = classified
    return AuditEvent(
        kind=kind,
        actor=decided_by or actor or SYSTEM_ACTOR,
        at=new.updated_at,
        from_state=old.state.value,
        to_state=new.state.value,
        details=details,
    )


def _opening_details(new: Incident) -> dict[str, Any]:
    return {
        "playbook": new.playbook,
        "group_key": new.group_key,
        "signal_id": new.signal.get("id"),
        "reason": new.plan.reason,
        "steps": [step.action for step in new.plan.steps],
        "missing": [missing.describe() for missing in new.plan.missing],
        "deadline": _time(new.deadline),
    }


def _classify(old: Incident, new: Incident) -> tuple[str, str | None, dict[str, Any]] | None:
    moved = old.state is not new.state
    if len(new.approvals) > len(old.approvals):
        approval = new.approvals[-1]
        return "approval", approval.user, {"approvals": len(new.approvals), "required": new.required_approvals}
    if new.state is _S.REJECTED and moved:
        return "rejection", new.rejected_by, {"reason": new.last_error} if new.last_error else {}
    if new.break_glass and not old.break_glass:
        return "break_glass", break_glass_actor(new), _break_glass_details(old, new)
    if new.state is _S.ESCALATED and moved:
        return "escalation", None, {"escalate_to": new.plan.approval.escalate_to, "deadline": _time(new.deadline)}
    if new.state is _S.EXPIRED and moved:
        return "expiry", None, {"deadline": _time(old.deadline)}
    if new.inputs != old.inputs:
        supplied = {key: value for key, value in new.inputs.items() if old.inputs.get(key) != value}
        return "input", None, {"params": supplied, "still_missing": [m.describe() for m in new.plan.missing]}
    undo = _undo_change(old, new)
    if undo is not None:
        return undo
    if new.undo_requested and not old.undo_requested:
        return "undo_requested", None, {}
    if moved:
        return "transition", None, {"last_error": new.last_error} if new.last_error else {}
    if new.completed_steps != old.completed_steps:
        return "step", None, {"completed_steps": new.completed_steps}
    changed = sorted(key for key, value in new.to_json().items() if old.to_json()[key] != value)
    loud = [key for key in changed if key not in _QUIET_FIELDS]
    return ("update", None, {"changed": loud}) if loud else None


def break_glass_actor(incident: Incident) -> str:
    """Who approved at timeout: the rule of the incident's playbook, e.g.
    `policy:workload-notify/on_timeout=auto_approve`."""
    return f"policy:{incident.playbook}/on_timeout={incident.plan.approval.on_timeout.value}"


def _break_glass_details(old: Incident, new: Incident) -> dict[str, Any]:
    policy = new.plan.approval
    return {
        "reason": "nobody decided before the deadline; approved by the playbook's on_timeout, review required",
        "playbook": new.playbook,
        "on_timeout": policy.on_timeout.value,
        "timeout": duration(policy.timeout),
        "deadline": _time(old.deadline),
    }


def duration(span: timedelta) -> str:
    """A timeout as playbooks write it: `30m`, `1h30m`, `2d`, `45s`."""
    seconds = int(span.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _undo_change(old: Incident, new: Incident) -> tuple[str, str | None, dict[str, Any]] | None:
    """An undo asked for (its requester), approved (each approver) or withdrawn (by the actor)."""
    before, after = old.undo, new.undo
    if after is not None and (before is None or (before.requester, before.at) != (after.requester, after.at)):
        return "undo_requested", after.requester, {"required": after.required, "queued": new.undo_requested}
    if after is not None and before is not None and len(after.approvals) > len(before.approvals):
        details = {
            "requester": after.requester,
            "approvals": len(after.approvals),
            "required": after.required,
            "queued": new.undo_requested,
        }
        return "undo_approval", after.approvals[-1].user, details
    if after is None and before is not None:
        return "undo_withdrawn", None, {"requester": before.requester}
    return None


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else timestamp(moment)
