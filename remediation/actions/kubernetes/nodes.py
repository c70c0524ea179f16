"""Node actions: cordon, uncordon and drain (cordon, then evict through the Eviction API).

Neighbours: `runtime.KubernetesAction` opens the session each action here works through;
`guards.blast_radius` runs before anything makes a node unschedulable; `targets` binds the node by
uid and a spec fingerprint (not resourceVersion, which heartbeats move). The step remembers whether
the node was cordoned before it (`was_cordoned`), so undo never uncordons a node a person had
cordoned.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import Field

from remediation.actions.kubernetes import guards
from remediation.actions.kubernetes.errors import ApiTransient, NotFound
from remediation.actions.kubernetes.params import EXAMPLE_CLUSTER, ClusterParams, NodeName, rules
from remediation.actions.kubernetes.runtime import KubernetesAction
from remediation.actions.kubernetes.session import NODE, NODES, PODS, ClusterSession, precondition, write_fresh
from remediation.actions.kubernetes.targets import bind, snapshot_target, version_of
from remediation.actions.runtime import (
    MAX_STEP_SECONDS,
    Outcome,
    PermanentFailure,
    Preview,
    StepContext,
    StepResult,
    TransientFailure,
)

logger = logging.getLogger(__name__)
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DEFAULT_PDB_DELAY = 5.0
_NODE = "aks-nodepool1-12345678-vmss000000"
_NODE_RULES = rules("nodes", "get", "list", "patch")


class NodeParams(ClusterParams):
    node: NodeName


class CordonNodeParams(NodeParams):
    pass


class UncordonNodeParams(NodeParams):
    pass


class DrainNodeParams(NodeParams):
    grace_period_seconds: int | None = Field(default=None, ge=0, description="null: each pod's own grace period")
    timeout_seconds: int = Field(
        default=600, gt=0, le=MAX_STEP_SECONDS, description="at most the longest a step may run (below the lease)"
    )
    max_concurrency: int = Field(default=5, ge=1, le=50, description="evictions in flight at once")


class CordonNode(KubernetesAction[CordonNodeParams]):
    name = "kubernetes.cordon_node"
    summary = "Mark a node unschedulable so no new pod lands on it; running pods stay. Undo: kubernetes.uncordon_node."
    Params = CordonNodeParams
    permissions = _NODE_RULES
    example = {"cluster": EXAMPLE_CLUSTER, "node": _NODE}
    destructive = False
    inverse = "kubernetes.uncordon_node"

    def preview_on(self, s: ClusterSession, params: CordonNodeParams, ctx: StepContext) -> Preview:
        return preview_cordon(s, params, ctx, action=self.name, want=True)

    def apply_on(self, s: ClusterSession, params: CordonNodeParams, ctx: StepContext) -> StepResult:
        return apply_cordon(s, params, ctx, action=self.name, want=True)

    def undo_on(self, s: ClusterSession, params: CordonNodeParams, result: StepResult, ctx: StepContext) -> StepResult:
        return undo_cordon_step(s, params, result, ctx)


class UncordonNode(KubernetesAction[UncordonNodeParams]):
    name = "kubernetes.uncordon_node"
    summary = "Mark a node schedulable again. Undo: kubernetes.cordon_node."
    Params = UncordonNodeParams
    permissions = _NODE_RULES
    example = {"cluster": EXAMPLE_CLUSTER, "node": _NODE}
    destructive = False
    inverse = "kubernetes.cordon_node"

    def preview_on(self, s: ClusterSession, params: UncordonNodeParams, ctx: StepContext) -> Preview:
        return preview_cordon(s, params, ctx, action=self.name, want=False)

    def apply_on(self, s: ClusterSession, params: UncordonNodeParams, ctx: StepContext) -> StepResult:
        return apply_cordon(s, params, ctx, action=self.name, want=False)

    def undo_on(
        self, s: ClusterSession, params: UncordonNodeParams, result: StepResult, ctx: StepContext
    ) -> StepResult:
        return undo_uncordon_step(s, params, result, ctx)


class DrainNode(KubernetesAction[DrainNodeParams]):
    name = "kubernetes.drain_node"
    summary = (
        "Cordon a node and evict its pods through the Eviction API, honouring PodDisruptionBudgets and "
        "skipping DaemonSet and mirror pods. No undo: controllers reschedule evicted pods elsewhere; "
        "kubernetes.uncordon_node reopens the node."
    )
    Params = DrainNodeParams
    permissions = (*_NODE_RULES, *rules("pods", "list"), *rules("pods/eviction", "create"))
    example = {"cluster": EXAMPLE_CLUSTER, "node": _NODE, "grace_period_seconds": 30, "timeout_seconds": 600}
    destructive = True

    def preview_on(self, s: ClusterSession, params: DrainNodeParams, ctx: StepContext) -> Preview:
        return preview_drain(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: DrainNodeParams, ctx: StepContext) -> StepResult:
        return apply_drain(s, params, ctx, action=self.name)

    def undo_on(self, s: ClusterSession, params: DrainNodeParams, result: StepResult, ctx: StepContext) -> StepResult:
        return undo_drain(s, params, result, ctx)


def read_node(s: ClusterSession, name: str) -> dict[str, Any]:
    node: dict[str, Any] = s.get(NODE, name=name, what=f"read node {name}")
    return node


def cordoned(node: dict[str, Any]) -> bool:
    return bool((node.get("spec") or {}).get("unschedulable"))


def set_unschedulable(s: ClusterSession, node: dict[str, Any], value: bool) -> None:
    name = node["metadata"]["name"]
    if value:
        guards.blast_radius(name, s.get(NODES, what="list nodes")["items"], settings=s.settings)

    def write(current: dict[str, Any]) -> Any:
        body = {"metadata": precondition(current), "spec": {"unschedulable": value}}
        return s.patch(NODE, body, name=name, what=f"patch node {name}")

    write_fresh(s, node, read=lambda: read_node(s, name), write=write, what=f"patch node {name}")


def preview_cordon(s: ClusterSession, params: NodeParams, ctx: StepContext, *, action: str, want: bool) -> Preview:
    node = read_node(s, params.node)
    target = version_of("Node", node)
    if cordoned(node) == want:
        return Preview(action, f"node {params.node} is already {_state(want)}: nothing to do", target=target, noop=True)
    if want:
        guards.blast_radius(params.node, s.get(NODES, what="list nodes")["items"], settings=s.settings)
    body = {"spec": {"unschedulable": want}}
    s.patch(NODE, body, name=params.node, dry_run=True, what=f"dry-run patch node {params.node}")
    changes = {"spec.unschedulable": {"from": not want, "to": want}}
    return Preview(action, f"node {params.node} will be {_state(want)}", changes=changes, target=target)


def apply_cordon(s: ClusterSession, params: NodeParams, ctx: StepContext, *, action: str, want: bool) -> StepResult:
    """Cordon (`want=True`) or uncordon the node; idempotent, and safe to retry after a crash."""
    node = read_node(s, params.node)
    target = version_of("Node", node)
    bind(ctx, target)
    was = bool(snapshot_target(ctx, target=target, state={"unschedulable": cordoned(node)})["unschedulable"])
    undo = {"was_cordoned": was}
    if cordoned(node) == want:
        already = was == want
        message = f"already {_state(want)}: nothing to do" if already else f"{_state(want)} by an earlier attempt"
        outcome = Outcome.NOOP if already else Outcome.APPLIED
        return StepResult(action, outcome, message, target=target, snapshot=ctx.snapshot_key, undo=undo)
    set_unschedulable(s, node, want)
    return StepResult(action, Outcome.APPLIED, _state(want), target=target, snapshot=ctx.snapshot_key, undo=undo)


def undo_cordon(s: ClusterSession, params: NodeParams, result: StepResult, *, restore_to: bool | None) -> StepResult:
    """Put `spec.unschedulable` back to what it was before the step; `None` when it was not recorded."""
    if restore_to is None:
        return StepResult(result.action, Outcome.NOOP, "nothing recorded to undo", target=result.target)
    node = read_node(s, params.node)
    if cordoned(node) == restore_to:
        message = f"node is {_state(restore_to)}, as before the step: nothing to do"
        return StepResult(result.action, Outcome.NOOP, message, target=result.target)
    set_unschedulable(s, node, restore_to)
    return StepResult(result.action, Outcome.UNDONE, f"node {_state(restore_to)} again", target=result.target)


def undo_cordon_step(s: ClusterSession, params: NodeParams, result: StepResult, ctx: StepContext) -> StepResult:
    was = result.undo.get("was_cordoned")
    if was:
        message = "node was cordoned before this step (by a person or another step): left cordoned"
        return StepResult(result.action, Outcome.NOOP, message, target=result.target)
    return undo_cordon(s, params, result, restore_to=None if was is None else False)


def undo_uncordon_step(s: ClusterSession, params: NodeParams, result: StepResult, ctx: StepContext) -> StepResult:
    was = result.undo.get("was_cordoned")
    return undo_cordon(s, params, result, restore_to=True if was else None)


def _state(unschedulable: bool) -> str:
    return "cordoned" if unschedulable else "schedulable"


# --- drain ---------------------------------------------------------------------------------------


def pods_to_evict(s: ClusterSession, node: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The pods on `node` to evict, and the names of those skipped (DaemonSet, mirror, terminating)."""
    pods = s.get(PODS, query={"fieldSelector": f"spec.nodeName={node}"}, what="list pods")
    evict, skipped = [], []
    for pod in pods["items"]:
        meta = pod["metadata"]
        owners = {ref.get("kind") for ref in meta.get("ownerReferences") or []}
        keep = "DaemonSet" in owners or MIRROR_ANNOTATION in (meta.get("annotations") or {})
        (skipped.append(_pod_name(pod)) if keep or meta.get("deletionTimestamp") else evict.append(pod))
    return evict, skipped


def preview_drain(s: ClusterSession, params: DrainNodeParams, ctx: StepContext, *, action: str) -> Preview:
    node = read_node(s, params.node)
    if not cordoned(node):
        guards.blast_radius(params.node, s.get(NODES, what="list nodes")["items"], settings=s.settings)
    evict, skipped = pods_to_evict(s, params.node)
    changes = {"cordon": not cordoned(node), "evict": [_pod_name(p) for p in evict], "skip": skipped}
    summary = f"node {params.node}: {'cordon, then ' if not cordoned(node) else ''}evict {len(evict)} pod(s)"
    noop = cordoned(node) and not evict
    return Preview(action, summary, changes=changes, target=version_of("Node", node), noop=noop)


def apply_drain(s: ClusterSession, params: DrainNodeParams, ctx: StepContext, *, action: str) -> StepResult:
    node = read_node(s, params.node)
    target = version_of("Node", node)
    bind(ctx, target)
    evict, _ = pods_to_evict(s, params.node)
    state = {"unschedulable": cordoned(node), "pods": [_pod_name(p) for p in evict]}
    was = bool(snapshot_target(ctx, target=target, state=state)["unschedulable"])
    if not cordoned(node):
        set_unschedulable(s, node, True)
    evicted = Evictions(s, params, ctx).run(evict)
    outcome = Outcome.NOOP if was and not evict else Outcome.APPLIED
    message = f"drained: {evicted} of {len(evict)} pod(s) evicted" if evict else "no pods to evict"
    undo = {"was_cordoned": was}
    return StepResult(action, outcome, message, target=target, snapshot=ctx.snapshot_key, undo=undo)


def undo_drain(s: ClusterSession, params: DrainNodeParams, result: StepResult, ctx: StepContext) -> StepResult:
    """Evicted pods are not brought back (their controllers rescheduled them); the node is reopened."""
    undone = undo_cordon_step(s, params, result, ctx)
    note = "; evicted pods stay where their controllers rescheduled them"
    return StepResult(undone.action, undone.outcome, undone.message + note, target=undone.target)


class Evictions:
    """Evict pods with at most `max_concurrency` in flight; a PDB's 429 is retried until the timeout."""

    def __init__(self, s: ClusterSession, params: DrainNodeParams, ctx: StepContext) -> None:
        self._s, self._params, self._ctx = s, params, ctx
        self._deadline = s.retry.clock() + params.timeout_seconds
        self._lock = threading.Lock()
        self._done = 0
        self._total = 0

    def run(self, pods: list[dict[str, Any]]) -> int:
        self._total = len(pods)
        with ThreadPoolExecutor(max_workers=self._params.max_concurrency, thread_name_prefix="evict") as pool:
            futures = [pool.submit(self._evict, pod) for pod in pods]
        errors = [f.exception() for f in futures if f.exception() is not None]
        stopped = next((e for e in errors if not isinstance(e, Exception)), None)
        if stopped is not None:
            raise stopped  # the worker is being stopped (SystemExit, KeyboardInterrupt): not a failed step
        if errors:
            summary = f"{self._done} of {self._total} evicted; {len(errors)} failed, first: {errors[0]}"
            if isinstance(errors[0], TransientFailure):
                raise TransientFailure(summary) from errors[0]
            raise PermanentFailure(summary) from errors[0]
        return self._done

    def _evict(self, pod: dict[str, Any]) -> None:
        from kubernetes import client

        meta = pod["metadata"]
        grace = self._params.grace_period_seconds
        body = client.V1Eviction(
            metadata=client.V1ObjectMeta(name=meta["name"], namespace=meta["namespace"]),
            delete_options=client.V1DeleteOptions(grace_period_seconds=grace) if grace is not None else None,
        )
        while True:
            try:
                self._s.call(
                    self._s.core.create_namespaced_pod_eviction, meta["name"], meta["namespace"], body,
                    what=f"evict pod {_pod_name(pod)}", retry_throttled=False,
                )  # fmt: skip
                break
            except NotFound:
                break  # gone already: that is what eviction wanted
            except ApiTransient as exc:
                if exc.status != 429:
                    raise
                self._wait_for_budget(pod, exc)
        self._count()

    def _wait_for_budget(self, pod: dict[str, Any], exc: ApiTransient) -> None:
        delay = exc.delay if exc.delay is not None else DEFAULT_PDB_DELAY
        if self._s.retry.clock() + delay > self._deadline:
            message = (
                f"a PodDisruptionBudget still blocks eviction of {_pod_name(pod)} "
                f"after {self._params.timeout_seconds}s: {exc}"
            )
            raise TransientFailure(message, delay=delay)
        logger.info("eviction blocked by a disruption budget", extra={"pod": _pod_name(pod), "delay": delay})
        self._s.retry.sleep(delay)

    def _count(self) -> None:
        with self._lock:
            self._done += 1
            self._ctx.progress(f"{self._done} of {self._total} evicted")  # under the lock: in order


def _pod_name(pod: dict[str, Any]) -> str:
    return f"{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


ACTIONS = (CordonNode, UncordonNode, DrainNode)
