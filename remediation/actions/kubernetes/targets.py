"""The target an approval binds to: its `TargetVersion`, the check before apply, and the write-once snapshot.

Neighbours: every action module calls `bind` before changing anything and `snapshot_target` before
its first write. Which version an object is bound by depends on its kind, because some objects'
resourceVersion moves without anyone changing what the action is about:

- Node: uid plus a fingerprint of `spec` (unschedulable, taints, ...); kubelet heartbeats rewrite
  status every few seconds and would make every node approval stale.
- Pod: uid plus a fingerprint of labels and spec; status moves with probes and restarts.
- Service: uid plus a fingerprint of spec; the load balancer's status moves on its own.
- Deployment, StatefulSet: uid plus `metadata.generation`, which moves only when spec does.
- RBAC objects: uid plus resourceVersion (they have no status).

A step retried after a crash has already changed its target; the first attempt's snapshot keeps the
version as approved, so the retry compares the approval with the snapshot, not with the live object.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from remediation.actions.runtime import (
    PermanentFailure,
    StepContext,
    TargetChanged,
    TargetReplaced,
    TargetVersion,
    prior_snapshot,
    snapshot_once,
)

_FINGERPRINTED = frozenset({"Node", "Pod", "Service"})
_BY_GENERATION = frozenset({"Deployment", "StatefulSet"})


def version_of(kind: str, obj: Mapping[str, Any]) -> TargetVersion:
    meta = obj.get("metadata") or {}
    if kind in _FINGERPRINTED:
        watched = {"spec": obj.get("spec") or {}}
        if kind == "Pod":
            watched["labels"] = meta.get("labels") or {}
        digest = hashlib.sha256(json.dumps(watched, sort_keys=True).encode()).hexdigest()[:16]
        version = f"spec:{digest}"
    elif kind in _BY_GENERATION:
        version = f"generation:{meta.get('generation')}"
    else:
        version = f"rv:{meta.get('resourceVersion')}"
    return TargetVersion(
        kind=kind, name=meta.get("name", ""), namespace=meta.get("namespace"), uid=meta.get("uid"), version=version
    )


def bind(ctx: StepContext, live: TargetVersion) -> None:
    """Refuse when the live target is not the one approved: replaced (uid) or modified (version)."""
    expected = ctx.expected
    if expected is None:
        return
    if (expected.kind, expected.name, expected.namespace) != (live.kind, live.name, live.namespace):
        raise PermanentFailure(f"approval was for {describe(expected)}, not {describe(live)}")
    if expected.uid and live.uid != expected.uid:
        raise TargetReplaced(f"{describe(live)} was deleted and re-created since approval (uid {live.uid})")
    prior = prior_snapshot(ctx)
    approved_against = TargetVersion.from_json(prior["target"]) if prior and prior.get("target") else live
    if expected.version and approved_against.version != expected.version:
        raise TargetChanged(f"{describe(live)} was modified since approval: approve again")


def snapshot_target(ctx: StepContext, *, target: TargetVersion, state: Mapping[str, Any]) -> dict[str, Any]:
    """The write-once snapshot of a Kubernetes target: its approved version and the state a step changes."""
    return snapshot_once(ctx, {"target": target.to_json(), **state})


def describe(target: TargetVersion) -> str:
    where = f"{target.namespace}/" if target.namespace else ""
    return f"{target.kind} {where}{target.name}"
