"""The contract every action implementation keeps: preview, apply (snapshot first) and undo.

Neighbours: `remediation.actions.base.Action` is the class every action derives from; the executor
runs actions with a `StepContext` and persists each `StepResult` before the next step.

Two kinds of failure decide retries: `TransientFailure` (429, 5xx, connection errors; may carry the
server's Retry-After) and `PermanentFailure` (4xx, bad input, a guard rail, a changed target).
An unknown exception inside a destructive action is permanent.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from remediation.audit import canonical_json
from remediation.failures import ActionFailure, PermanentFailure, TransientFailure

__all__ = [
    "MAX_STEP_SECONDS",
    "ActionFailure",
    "GuardRefused",
    "HashingSnapshots",
    "Outcome",
    "PermanentFailure",
    "Preview",
    "SnapshotRefused",
    "SnapshotStore",
    "StepContext",
    "StepResult",
    "TargetChanged",
    "TargetReplaced",
    "TargetVersion",
    "TransientFailure",
    "content_hash",
    "prior_snapshot",
    "snapshot_once",
    "verified_snapshot",
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


class SnapshotRefused(PermanentFailure):
    """A snapshot is not the one its step wrote (another hash) or names another target: not restored."""


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
    snapshot_hash: str | None = None  # `content_hash` of the snapshot as the step stored it (see ActionSet.apply)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "outcome": self.outcome.value,
            "message": self.message,
            "target": self.target.to_json() if self.target else None,
            "snapshot": self.snapshot,
            "undo": dict(self.undo),
            "snapshot_hash": self.snapshot_hash,
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
            snapshot_hash=data.get("snapshot_hash"),
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


def content_hash(document: Mapping[str, Any]) -> str:
    """ "sha256:<hex>" of the document's canonical JSON: what a step result records of its snapshot."""
    return "sha256:" + hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()


class HashingSnapshots:
    """A step's view of the snapshot store that remembers the hash of each document the step read.

    `snapshot_once` reads back what it stored, so the hash is of the snapshot as the step wrote (or
    found) it, taken in the same breath; one is made per `ActionSet.apply` call and never shared.
    """

    def __init__(self, store: SnapshotStore) -> None:
        self._store = store
        self.hashes: dict[str, str] = {}

    def save(self, *, key: str, document: Mapping[str, Any]) -> str:
        return self._store.save(key=key, document=document)

    def load(self, key: str) -> dict[str, Any]:
        document = self._store.load(key)
        self.hashes.setdefault(key, content_hash(document))
        return document


def verified_snapshot(
    snapshots: SnapshotStore, key: str, *, expected_hash: str | None, target: TargetVersion | None
) -> dict[str, Any]:
    """The snapshot `key` if it is the one its step recorded: same content hash, same kind, name and
    namespace as `target`. Anything else is refused: a snapshot is undo's source of truth, and the
    store is writable by whoever holds the storage key."""
    if not expected_hash:
        raise SnapshotRefused(f"snapshot {key}: its step recorded no content hash, so it cannot be trusted")
    try:
        document = snapshots.load(key)
    except LookupError:
        raise SnapshotRefused(f"snapshot {key} is missing: nothing restored") from None
    found = content_hash(document)
    if found != expected_hash:
        raise SnapshotRefused(
            f"snapshot {key} was changed after its step wrote it ({found} is not the recorded {expected_hash}): "
            "nothing restored"
        )
    recorded = document.get("target")
    if target is not None and isinstance(recorded, Mapping):
        named = tuple(recorded.get(k) for k in ("kind", "name", "namespace"))
        if named != (target.kind, target.name, target.namespace):
            raise SnapshotRefused(
                f"snapshot {key} names {named[0]} {named[1]} in {named[2] or 'the cluster'}, not the step's "
                f"target {target.kind} {target.name}: nothing restored"
            )
    return document
