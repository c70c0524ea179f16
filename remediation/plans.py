"""What a playbook decided for one Signal: the steps with resolved parameters and the approval policy.

`remediation.playbooks` builds Plans; `remediation.incidents` stores them on incidents; the
executor runs their steps; notifiers render them. Plans are plain data and round-trip through JSON.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any


class ApprovalMode(enum.StrEnum):
    AUTO = "auto"
    REQUIRED = "required"


class OnTimeout(enum.StrEnum):
    DENY = "deny"
    ESCALATE = "escalate"
    AUTO_APPROVE = "auto_approve"


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    mode: ApprovalMode = ApprovalMode.REQUIRED
    approvers: tuple[str, ...] = ()  # Slack user ids (U...) and user-group handles (@oncall)
    min_approvals: int = 1
    timeout: timedelta = timedelta(minutes=30)
    on_timeout: OnTimeout = OnTimeout.DENY
    escalate_to: str | None = None  # a channel (#sec-leads / C...) or a group handle

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "approvers": list(self.approvers),
            "min_approvals": self.min_approvals,
            "timeout_seconds": int(self.timeout.total_seconds()),
            "on_timeout": self.on_timeout.value,
            "escalate_to": self.escalate_to,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ApprovalPolicy:
        return cls(
            mode=ApprovalMode(data["mode"]),
            approvers=tuple(data["approvers"]),
            min_approvals=int(data["min_approvals"]),
            timeout=timedelta(seconds=int(data["timeout_seconds"])),
            on_timeout=OnTimeout(data["on_timeout"]),
            escalate_to=data.get("escalate_to"),
        )


@dataclass(frozen=True, slots=True)
class MissingParam:
    """A step parameter whose Signal field was absent: the incident needs a person to supply it."""

    step: int
    param: str
    field: str  # the Signal field path the playbook named, e.g. targets.rbac_name

    def describe(self) -> str:
        return f"step {self.step + 1} parameter {self.param!r} (from {self.field})"


@dataclass(frozen=True, slots=True)
class PlannedStep:
    action: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    playbook: str
    steps: tuple[PlannedStep, ...]
    approval: ApprovalPolicy
    notify: str | None = None
    group_window: timedelta = timedelta(minutes=15)
    group_key: str = ""  # same playbook + same target identity -> same key
    missing: tuple[MissingParam, ...] = ()
    reason: str = ""  # why the playbook fired, in words a responder reads

    def to_json(self) -> dict[str, Any]:
        return {
            "playbook": self.playbook,
            "steps": [{"action": step.action, "params": dict(step.params)} for step in self.steps],
            "approval": self.approval.to_json(),
            "notify": self.notify,
            "group_window_seconds": int(self.group_window.total_seconds()),
            "group_key": self.group_key,
            "missing": [{"step": m.step, "param": m.param, "field": m.field} for m in self.missing],
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Plan:
        return cls(
            playbook=data["playbook"],
            steps=tuple(PlannedStep(action=s["action"], params=dict(s["params"])) for s in data["steps"]),
            approval=ApprovalPolicy.from_json(data["approval"]),
            notify=data.get("notify"),
            group_window=timedelta(seconds=int(data["group_window_seconds"])),
            group_key=data["group_key"],
            missing=tuple(MissingParam(step=m["step"], param=m["param"], field=m["field"]) for m in data["missing"]),
            reason=data.get("reason", ""),
        )
