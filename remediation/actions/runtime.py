"""The contract every action implementation keeps: preview, apply (snapshot first) and undo.

Neighbours: `remediation.actions.base.Action` is the class every action derives from; the executor
runs actions with a `StepContext` and persists each `StepResult` before the next step.

Two kinds of failure decide retries: `TransientFailure` (429, 5xx, connection errors; may carry the
server's Retry-After) and `PermanentFailure` (4xx, bad input, a guard rail, a changed target).
An unknown exception inside a destructive action is permanent.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from remediation.failures import ActionFailure, PermanentFailure, TransientFailure

__all__ = [
    "MAX_STEP_SECONDS",
    "ActionFailure",
    "GuardRefused",
    "Outcome",
    "PermanentFailure",
    "Preview",
    "SnapshotStore",
    "StepContext",
    "StepResult",
    "TargetChanged",
    "TargetReplaced",
    "TargetVersion",
    "TransientFailure",
    "prior_snapshot",
    "snapshot_once",
]


# The longest a single step may run (a drain's timeout is capped to it). The executor's lease is
# longer and host.json's functionTimeout longer still, so a step never outlives either.
MAX_STEP_SECONDS = 780


class GuardRefused(PermanentFailure):
    """A guard rail refused the action (protected namespace or object, blast radius, last node)."""


class TargetReplaced(PermanentFailure):
    """The target was deleted and re-created since the approval (another uid): refused."""


class TargetChanged(PermanentFailure):
    """The target was modified since the approval (another version or digest): approve again."""


@dataclass(frozen=True, slots=True)
class TargetVersion:
    """The exact object an approval binds to: a Kubernetes uid and resourceVersion, or an image digest."""

    kind: str
    name: str
    namespace: str | None = None
    uid: str | None = None
    version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "uid": self.uid,
            "version": self.version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TargetVersion:
        return cls(
            kind=data["kind"],
            name=data["name"],
            namespace=data.get("namespace"),
            uid=data.get("uid"),
            version=data.get("version"),
        )


@dataclass(frozen=True, slots=True)
class Preview:
    """What apply would do, read from the live target (or a server-side dry run)."""

    action: str
    summary: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    target: TargetVersion | None = None
    noop: bool = False  # already in the wanted state: apply will change nothing


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    NOOP = "noop"  # already in the wanted state; nothing was changed
    UNDONE = "undone"


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step's result: logged once, persisted with the incident, rendered into Slack."""

    action: str
    outcome: Outcome
    message: str
    target: TargetVersion | None = None
    snapshot: str | None = None  # key in the snapshot store of what the step changed
    undo: Mapping[str, Any] = field(default_factory=dict)  # what undo needs, e.g. {"was_cordoned": False}

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "outcome": self.outcome.value,
            "message": self.message,
            "target": self.target.to_json() if self.target else None,
            "snapshot": self.snapshot,
            "undo": dict(self.undo),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StepResult:
        return cls(
            action=data["action"],
            outcome=Outcome(data["outcome"]),
            message=data["message"],
            target=TargetVersion.from_json(data["target"]) if data.get("target") else None,
            snapshot=data.get("snapshot"),
            undo=dict(data.get("undo") or {}),
        )


class SnapshotStore(Protocol):
    """Write-once documents: the state of a target before a destructive step changed it."""

    def save(self, *, key: str, document: Mapping[str, Any]) -> str:
        """Store `document` under `key` unless a document is already there; return the key.

        Write-once matters: a step retried after a crash must keep the original snapshot, not
        replace it with the state its first attempt already changed.
        """
        ...

    def load(self, key: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class StepContext:
    incident_id: str
    step: int
    snapshots: SnapshotStore
    progress: Callable[[str], None] = lambda message: None
    expected: TargetVersion | None = None  # the target version the approval was given for

    @property
    def snapshot_key(self) -> str:
        return f"{self.incident_id}/step-{self.step}.json"


def prior_snapshot(ctx: StepContext) -> dict[str, Any] | None:
    """The snapshot an earlier attempt of this very step stored (a retry after a crash), if any."""
    try:
        return ctx.snapshots.load(ctx.snapshot_key)
    except LookupError:  # the store's SnapshotMissing
        return None


def snapshot_once(ctx: StepContext, document: Mapping[str, Any]) -> dict[str, Any]:
    """Store the state before the change (write-once) and return what the store holds: the first attempt's."""
    ctx.snapshots.save(key=ctx.snapshot_key, document=document)
    return ctx.snapshots.load(ctx.snapshot_key)
