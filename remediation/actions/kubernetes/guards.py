"""Guard rails checked inside the actions, whatever a playbook says.

Neighbours: the action modules call these before any write; each refusal is a `GuardRefused`
(permanent) whose message names the rule. The limits come from `settings.KubernetesSettings`.

- protected namespaces: kube-system, kube-public, kube-node-lease, gatekeeper-system and the ones
  in REMEDIATION_PROTECTED_NAMESPACES;
- protected RBAC objects: `system:` names, the cluster-admin ClusterRole, anything labelled
  `kubernetes.io/bootstrapping`;
- blast radius: cordoning or draining never makes the unschedulable share of nodes exceed the
  limit (one third by default), and never takes the last schedulable node;
- clusters: only those in REMEDIATION_CLUSTERS (AKS resource ids or kubeconfig names); left empty,
  only the clusters REMEDIATION_KUBECONFIGS names, by their exact key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from remediation.actions.runtime import GuardRefused
from remediation.settings import KubernetesSettings

BOOTSTRAPPING_LABEL = "kubernetes.io/bootstrapping"


def cluster_allowed(cluster: str, *, settings: KubernetesSettings) -> str:
    """The cluster's lower-cased key if the bot may act on it; GuardRefused, naming the setting, if not."""
    key = cluster.lower()
    if key in (settings.clusters or settings.kubeconfigs):
        return key
    unset = "" if settings.clusters else " (unset: only the clusters named in REMEDIATION_KUBECONFIGS)"
    raise GuardRefused(f"guard 'cluster allow-list': cluster {cluster} is not in REMEDIATION_CLUSTERS{unset}")


def namespace_allowed(namespace: str | None, *, settings: KubernetesSettings) -> None:
    if namespace is not None and namespace in settings.protected_namespaces:
        raise GuardRefused(f"guard 'protected namespace': {namespace} is protected; remediate it by hand")


def rbac_deletable(kind: str, obj: Mapping[str, Any], *, settings: KubernetesSettings) -> None:
    meta = obj.get("metadata") or {}
    name = str(meta.get("name", ""))
    namespace_allowed(meta.get("namespace"), settings=settings)
    if name.startswith("system:"):
        raise GuardRefused(f"guard 'system RBAC object': {kind} {name} belongs to Kubernetes itself")
    if kind == "ClusterRole" and name == "cluster-admin":
        raise GuardRefused("guard 'cluster-admin': the cluster-admin ClusterRole is never deleted")
    if BOOTSTRAPPING_LABEL in (meta.get("labels") or {}):
        raise GuardRefused(f"guard 'bootstrapping label': {kind} {name} is labelled {BOOTSTRAPPING_LABEL}")


def blast_radius(node: str, nodes: Iterable[Mapping[str, Any]], *, settings: KubernetesSettings) -> None:
    """Refuse when cordoning `node` would leave no schedulable node or exceed the unschedulable share.

    Nodes cordoned already (by us or by anyone) count as unschedulable.
    """
    unschedulable = {n["metadata"]["name"] for n in nodes if (n.get("spec") or {}).get("unschedulable")}
    names = {n["metadata"]["name"] for n in nodes}
    after = unschedulable | {node}
    total = len(names | {node})
    if len(after) >= total:
        raise GuardRefused(f"guard 'last schedulable node': cordoning {node} would leave no schedulable node")
    limit = settings.max_unschedulable_fraction
    if len(after) / total > limit:
        raise GuardRefused(
            f"guard 'blast radius': {len(after)} of {total} nodes would be unschedulable, "
            f"over the limit of {limit:.0%} (REMEDIATION_MAX_UNSCHEDULABLE_FRACTION)"
        )
