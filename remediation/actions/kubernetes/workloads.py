"""Workload actions: scale a Deployment or StatefulSet to zero through its scale subresource, and back.

Neighbours: `runtime.KubernetesAction` opens the session it works through; `guards.namespace_allowed`
refuses protected namespaces; `targets` binds the workload by uid and `metadata.generation`
(status moves with every pod, generation only with spec). The replica count before the step is
in the snapshot and in `StepResult.undo`, so undo scales back to exactly that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from remediation.actions.kubernetes import guards
from remediation.actions.kubernetes.params import EXAMPLE_CLUSTER, ClusterParams, Namespace, WorkloadName, rules
from remediation.actions.kubernetes.runtime import KubernetesAction
from remediation.actions.kubernetes.session import DRY_RUN, ClusterSession
from remediation.actions.kubernetes.targets import bind, snapshot_target, version_of
from remediation.actions.runtime import Outcome, Preview, StepContext, StepResult

_SUFFIX = {"Deployment": "deployment", "StatefulSet": "stateful_set"}


def _method(s: ClusterSession, verb: str, kind: str) -> Callable[..., Any]:
    method: Callable[..., Any] = getattr(s.apps, verb.format(_SUFFIX[kind]))
    return method


def read_workload(s: ClusterSession, params: ScaleToZeroParams) -> dict[str, Any]:
    what = f"read {params.kind} {params.namespace}/{params.name}"
    obj: dict[str, Any] = s.call(
        _method(s, "read_namespaced_{}", params.kind), params.name, params.namespace, what=what
    )
    return obj


def replicas(obj: dict[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("replicas", 1))


def scale(s: ClusterSession, params: ScaleToZeroParams, count: int, *, dry_run: bool = False) -> None:
    extra: dict[str, Any] = {"dry_run": DRY_RUN} if dry_run else {}
    what = f"scale {params.kind} {params.namespace}/{params.name} to {count}"
    patch = _method(s, "patch_namespaced_{}_scale", params.kind)
    s.call(patch, params.name, params.namespace, {"spec": {"replicas": count}}, what=what, **extra)


def preview(s: ClusterSession, params: ScaleToZeroParams, ctx: StepContext, *, action: str) -> Preview:
    guards.namespace_allowed(params.namespace, settings=s.settings)
    obj = read_workload(s, params)
    target = version_of(params.kind, obj)
    label = f"{params.kind} {params.namespace}/{params.name}"
    if replicas(obj) == 0:
        return Preview(action, f"{label} has zero replicas already: nothing to do", target=target, noop=True)
    scale(s, params, 0, dry_run=True)
    changes = {"spec.replicas": {"from": replicas(obj), "to": 0}}
    return Preview(action, f"{label} will be scaled from {replicas(obj)} to 0", changes, target)


def apply(s: ClusterSession, params: ScaleToZeroParams, ctx: StepContext, *, action: str) -> StepResult:
    guards.namespace_allowed(params.namespace, settings=s.settings)
    obj = read_workload(s, params)
    target = version_of(params.kind, obj)
    bind(ctx, target)
    before = int(snapshot_target(ctx, target=target, state={"replicas": replicas(obj)})["replicas"])
    undo = {"replicas": before}
    if replicas(obj) == 0:
        outcome = Outcome.NOOP if before == 0 else Outcome.APPLIED
        message = "zero replicas already: nothing to do" if before == 0 else "scaled to 0 by an earlier attempt"
        return StepResult(action, outcome, message, target=target, snapshot=ctx.snapshot_key, undo=undo)
    scale(s, params, 0)
    message = f"scaled from {before} to 0"
    return StepResult(action, Outcome.APPLIED, message, target=target, snapshot=ctx.snapshot_key, undo=undo)


def undo(s: ClusterSession, params: ScaleToZeroParams, result: StepResult, ctx: StepContext) -> StepResult:
    before = int(result.undo.get("replicas", 0))
    if before == 0:
        return StepResult(result.action, Outcome.NOOP, "it had zero replicas before the step: nothing to undo")
    current = replicas(read_workload(s, params))
    if current != 0:
        message = f"someone scaled it to {current} since: left alone"
        return StepResult(result.action, Outcome.NOOP, message, target=result.target)
    scale(s, params, before)
    return StepResult(result.action, Outcome.UNDONE, f"scaled back to {before}", target=result.target)


class ScaleToZeroParams(ClusterParams):
    namespace: Namespace
    kind: Literal["Deployment", "StatefulSet"]
    name: WorkloadName


class ScaleToZero(KubernetesAction[ScaleToZeroParams]):
    name = "kubernetes.scale_to_zero"
    summary = (
        "Scale a Deployment or StatefulSet to zero replicas, recording the current count. Its own undo "
        "scales back to the recorded count, so it has no separate inverse action."
    )
    Params = ScaleToZeroParams
    permissions = tuple(
        p
        for r in ("deployments", "statefulsets")
        for p in (*rules(f"apps/{r}", "get"), *rules(f"apps/{r}/scale", "patch"))
    )
    example = {"cluster": EXAMPLE_CLUSTER, "namespace": "payments", "kind": "Deployment", "name": "api"}
    destructive = True

    def preview_on(self, s: ClusterSession, params: ScaleToZeroParams, ctx: StepContext) -> Preview:
        return preview(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: ScaleToZeroParams, ctx: StepContext) -> StepResult:
        return apply(s, params, ctx, action=self.name)

    def undo_on(self, s: ClusterSession, params: ScaleToZeroParams, result: StepResult, ctx: StepContext) -> StepResult:
        return undo(s, params, result, ctx)


ACTIONS = (ScaleToZero,)
