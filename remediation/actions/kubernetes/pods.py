"""Pod actions: isolate (label + deny-all NetworkPolicy), release (remove both) and delete.

Neighbours: `runtime.KubernetesAction` opens the session these actions work through;
`isolation` creates, recognises and removes our NetworkPolicy (only ours: managed-by label, deny-all);
`guards.namespace_allowed` refuses protected namespaces; `targets` binds a pod by uid and a
fingerprint of its labels and spec (status moves with every probe). Isolation keeps the pod running
for forensics: the label `remediation.security/isolated=<incident>` makes the NetworkPolicy
`remediation-isolate-<pod>` (no ingress, no egress) select it.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import Field

from remediation.actions.kubernetes import guards
from remediation.actions.kubernetes.errors import NotFound
from remediation.actions.kubernetes.isolation import (
    ISOLATED_LABEL,
    create_policy,
    delete_ours,
    deny_all_policy,
    label_value,
    managed_by_us,
    policy_name,
    read_policy,
    refuse_foreign,
)

__all__ = ["ACTIONS", "ISOLATED_LABEL", "label_value", "policy_name"]
from remediation.actions.kubernetes.params import EXAMPLE_POD, ClusterParams, Namespace, PodName, rules
from remediation.actions.kubernetes.runtime import KubernetesAction
from remediation.actions.kubernetes.session import DRY_RUN, POD, ClusterSession, precondition, write_fresh
from remediation.actions.kubernetes.targets import bind, snapshot_target, version_of
from remediation.actions.runtime import Outcome, PermanentFailure, Preview, StepContext, StepResult, prior_snapshot


def read_pod(s: ClusterSession, namespace: str, name: str) -> dict[str, Any]:
    pod: dict[str, Any] = s.get(POD, namespace=namespace, name=name, what=f"read pod {namespace}/{name}")
    return pod


def _label_of(pod: dict[str, Any]) -> str | None:
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(ISOLATED_LABEL)
    return str(value) if value is not None else None


def _set_label(s: ClusterSession, pod: dict[str, Any], value: str | None, *, dry_run: bool = False) -> None:
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]

    def write(current: dict[str, Any]) -> Any:
        body = {"metadata": {**precondition(current), "labels": {ISOLATED_LABEL: value}}}
        return s.patch(POD, body, namespace=namespace, name=name, dry_run=dry_run, what=f"label pod {namespace}/{name}")

    write_fresh(s, pod, read=lambda: read_pod(s, namespace, name), write=write, what=f"label pod {namespace}/{name}")


def preview_isolate(s: ClusterSession, params: PodParams, ctx: StepContext, *, action: str) -> Preview:
    guards.namespace_allowed(params.namespace, settings=s.settings)
    pod = read_pod(s, params.namespace, params.pod)
    value = label_value(ctx.incident_id)
    target = version_of("Pod", pod)
    policy = read_policy(s, params.namespace, params.pod)
    refuse_foreign(policy, value, namespace=params.namespace, pod=params.pod)
    if _label_of(pod) == value and policy is not None:
        return Preview(action, f"pod {params.namespace}/{params.pod} is isolated already", target=target, noop=True)
    _set_label(s, pod, value, dry_run=True)
    create_policy(s, params.namespace, params.pod, value, dry_run=True)
    changes = {"label": {ISOLATED_LABEL: value}, "networkPolicy": deny_all_policy(params.namespace, params.pod, value)}
    return Preview(action, f"pod {params.namespace}/{params.pod} will be cut off the network", changes, target)


def apply_isolate(s: ClusterSession, params: PodParams, ctx: StepContext, *, action: str) -> StepResult:
    guards.namespace_allowed(params.namespace, settings=s.settings)
    pod = read_pod(s, params.namespace, params.pod)
    target = version_of("Pod", pod)
    bind(ctx, target)
    value = label_value(ctx.incident_id)
    policy = read_policy(s, params.namespace, params.pod)
    refuse_foreign(policy, value, namespace=params.namespace, pod=params.pod)  # before anything is stored
    before = snapshot_target(ctx, target=target, state={"label": _label_of(pod)})["label"]
    had_policy = policy is not None
    undo = {"label": value, "label_before": before}
    if _label_of(pod) == value and had_policy:
        outcome = Outcome.NOOP if before == value else Outcome.APPLIED
        message = "already isolated: nothing to do" if before == value else "isolated by an earlier attempt"
        return StepResult(action, outcome, message, target=target, snapshot=ctx.snapshot_key, undo=undo)
    create_policy(s, params.namespace, params.pod, value)  # policy first: nothing is cut off half-way
    if _label_of(pod) != value:
        _set_label(s, pod, value)
    message = f"isolated: labelled {ISOLATED_LABEL}={value}, deny-all NetworkPolicy {policy_name(params.pod)}"
    return StepResult(action, Outcome.APPLIED, message, target=target, snapshot=ctx.snapshot_key, undo=undo)


def preview_release(s: ClusterSession, params: PodParams, ctx: StepContext, *, action: str) -> Preview:
    pod = read_pod(s, params.namespace, params.pod)
    found = read_policy(s, params.namespace, params.pod)
    if found is not None and not managed_by_us(found):
        raise PermanentFailure(f"NetworkPolicy {params.namespace}/{policy_name(params.pod)} is not ours: left alone")
    policy = found is not None
    changes = {"removeLabel": _label_of(pod), "deleteNetworkPolicy": policy_name(params.pod) if policy else None}
    noop = _label_of(pod) is None and not policy
    summary = "not isolated: nothing to release" if noop else f"pod {params.namespace}/{params.pod} will be released"
    return Preview(action, summary, changes, version_of("Pod", pod), noop=noop)


def apply_release(s: ClusterSession, params: PodParams, ctx: StepContext, *, action: str) -> StepResult:
    pod = read_pod(s, params.namespace, params.pod)
    target = version_of("Pod", pod)
    bind(ctx, target)
    value = _label_of(pod)
    released = delete_ours(s, params.namespace, params.pod)  # first: a policy not ours fails the step untouched
    if value is not None:
        _set_label(s, pod, None)
        released = True
    if not released:
        return StepResult(action, Outcome.NOOP, "not isolated: nothing to do", target=target)
    return StepResult(action, Outcome.APPLIED, "released: label and NetworkPolicy removed", target=target,
                      undo={"label": value})  # fmt: skip


def undo_isolate(s: ClusterSession, params: PodParams, result: StepResult, ctx: StepContext) -> StepResult:
    if result.undo.get("label_before") == result.undo.get("label"):
        return StepResult(result.action, Outcome.NOOP, "the pod was isolated before this step: left isolated")
    released = apply_release(s, params, StepContext(ctx.incident_id, ctx.step, ctx.snapshots), action=result.action)
    outcome = Outcome.UNDONE if released.outcome is Outcome.APPLIED else released.outcome
    return StepResult(result.action, outcome, released.message, target=released.target)


def undo_release(s: ClusterSession, params: PodParams, result: StepResult, ctx: StepContext) -> StepResult:
    value = result.undo.get("label")
    if not value:
        return StepResult(result.action, Outcome.NOOP, "the release changed nothing: nothing to undo")
    pod = read_pod(s, params.namespace, params.pod)
    create_policy(s, params.namespace, params.pod, str(value))
    if _label_of(pod) != value:
        _set_label(s, pod, str(value))
    return StepResult(result.action, Outcome.UNDONE, "isolated again", target=version_of("Pod", pod))


def preview_delete(s: ClusterSession, params: DeletePodParams, ctx: StepContext, *, action: str) -> Preview:
    guards.namespace_allowed(params.namespace, settings=s.settings)
    pod = read_pod(s, params.namespace, params.pod)
    s.call(s.core.delete_namespaced_pod, params.pod, params.namespace, dry_run=DRY_RUN,
           grace_period_seconds=params.grace_period_seconds, what="dry-run delete pod")  # fmt: skip
    owners = [f"{o.get('kind')}/{o.get('name')}" for o in pod["metadata"].get("ownerReferences") or []]
    replaced = f" ({', '.join(owners)} replaces it)" if owners else ""
    changes = {"delete": f"{params.namespace}/{params.pod}", "owners": owners}
    return Preview(
        action, f"pod {params.namespace}/{params.pod} will be deleted{replaced}", changes, version_of("Pod", pod)
    )


def apply_delete(s: ClusterSession, params: DeletePodParams, ctx: StepContext, *, action: str) -> StepResult:
    guards.namespace_allowed(params.namespace, settings=s.settings)
    label = f"pod {params.namespace}/{params.pod}"
    try:
        pod = read_pod(s, params.namespace, params.pod)
    except NotFound:
        earlier = prior_snapshot(ctx) is not None
        if earlier:
            return StepResult(
                action, Outcome.APPLIED, f"{label} deleted by an earlier attempt", snapshot=ctx.snapshot_key
            )
        return StepResult(action, Outcome.NOOP, f"{label} not found: already deleted")
    target = version_of("Pod", pod)
    bind(ctx, target)
    snapshot_target(ctx, target=target, state={"object": pod})  # for the forensic record; never re-created
    with contextlib.suppress(NotFound):  # gone meanwhile: the wanted state
        s.call(s.core.delete_namespaced_pod, params.pod, params.namespace,
               grace_period_seconds=params.grace_period_seconds, what=f"delete {label}")  # fmt: skip
    return StepResult(action, Outcome.APPLIED, f"{label} deleted", target=target, snapshot=ctx.snapshot_key)


def undo_delete(s: ClusterSession, params: DeletePodParams, result: StepResult, ctx: StepContext) -> StepResult:
    raise PermanentFailure("kubernetes.delete_pod cannot be undone: the pod and its local state are gone")


class PodParams(ClusterParams):
    namespace: Namespace
    pod: PodName


class IsolatePodParams(PodParams):
    pass


class ReleasePodParams(PodParams):
    pass


class DeletePodParams(PodParams):
    grace_period_seconds: int | None = Field(default=None, ge=0)


class IsolatePod(KubernetesAction[IsolatePodParams]):
    name = "kubernetes.isolate_pod"
    summary = (
        "Cut a pod off the network while it keeps running for forensics: label it and apply a deny-all "
        "NetworkPolicy selecting that label. Undo: kubernetes.release_pod."
    )
    Params = IsolatePodParams
    permissions = (*rules("pods", "get", "patch"), *rules("networking.k8s.io/networkpolicies", "get", "create"))
    example = dict(EXAMPLE_POD)
    destructive = True
    inverse = "kubernetes.release_pod"

    def preview_on(self, s: ClusterSession, params: IsolatePodParams, ctx: StepContext) -> Preview:
        return preview_isolate(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: IsolatePodParams, ctx: StepContext) -> StepResult:
        return apply_isolate(s, params, ctx, action=self.name)

    def undo_on(self, s: ClusterSession, params: IsolatePodParams, result: StepResult, ctx: StepContext) -> StepResult:
        return undo_isolate(s, params, result, ctx)


class ReleasePod(KubernetesAction[ReleasePodParams]):
    name = "kubernetes.release_pod"
    summary = "Undo an isolation: remove the pod's quarantine label and its deny-all NetworkPolicy."
    Params = ReleasePodParams
    permissions = (*rules("pods", "get", "patch"), *rules("networking.k8s.io/networkpolicies", "get", "delete"))
    example = dict(EXAMPLE_POD)
    destructive = False

    def preview_on(self, s: ClusterSession, params: ReleasePodParams, ctx: StepContext) -> Preview:
        return preview_release(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: ReleasePodParams, ctx: StepContext) -> StepResult:
        return apply_release(s, params, ctx, action=self.name)

    def undo_on(self, s: ClusterSession, params: ReleasePodParams, result: StepResult, ctx: StepContext) -> StepResult:
        return undo_release(s, params, result, ctx)


class DeletePod(KubernetesAction[DeletePodParams]):
    name = "kubernetes.delete_pod"
    summary = (
        "Delete a pod; a controller that owns it starts a fresh one. No undo: the deleted pod "
        "and its local state are gone."
    )
    Params = DeletePodParams
    permissions = rules("pods", "get", "delete")
    example = {**EXAMPLE_POD, "grace_period_seconds": 0}
    destructive = True
    reversible = False

    def preview_on(self, s: ClusterSession, params: DeletePodParams, ctx: StepContext) -> Preview:
        return preview_delete(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: DeletePodParams, ctx: StepContext) -> StepResult:
        return apply_delete(s, params, ctx, action=self.name)

    def undo_on(self, s: ClusterSession, params: DeletePodParams, result: StepResult, ctx: StepContext) -> StepResult:
        return undo_delete(s, params, result, ctx)


ACTIONS = (IsolatePod, ReleasePod, DeletePod)
