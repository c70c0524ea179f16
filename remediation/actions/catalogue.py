"""The action registry: every action a playbook may name, with its parameters, permissions and example.

This is the one list. Playbook validation (`remediation.playbooks`) checks steps against it, the
catalogue in `docs/actions.md` is generated from it (`remediation.actions.catalogue`), and the
executor will look implementations up by the same names. Parameter models live with their family:
`remediation.actions.kubernetes`, `.acr` and `.notify`.

Permissions read `"<system>: <permission>"`: `kubernetes: <[group/]resource> <verb>` for the
cluster role the bot's identity needs, `azure: <Azure RBAC (data) action>` for the registry, and
`slack: <OAuth scope>` for the bot token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel

from remediation.actions import acr, kubernetes, notify


@dataclass(frozen=True, slots=True)
class ActionSpec:
    name: str
    summary: str
    params: type[BaseModel]
    permissions: tuple[str, ...]
    example: dict[str, Any]
    destructive: bool  # removes, blocks or disrupts something in use: the executor snapshots first
    inverse: str | None  # the action that undoes this one, when it is a separate action
    reversible: bool = True  # False: undo cannot bring back what apply removed (a deleted pod)

    def validate(self, params: Mapping[str, Any]) -> BaseModel:
        """The typed parameters; pydantic.ValidationError when they do not fit the model."""
        return self.params.model_validate(params)


class UnknownAction(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown action {self.name!r} (known actions: {', '.join(sorted(ACTIONS))})"


def _k8s(resource: str, *verbs: str) -> tuple[str, ...]:
    return tuple(f"kubernetes: {resource} {verb}" for verb in verbs)


def _azure(*actions: str) -> tuple[str, ...]:
    return tuple(f"azure: Microsoft.ContainerRegistry/registries/{action}" for action in actions)


_RBAC = ("clusterrolebindings", "rolebindings", "clusterroles", "roles")
_CLUSTER = "aks-prod-weu"  # a configured cluster name; an AKS resource id is accepted too
_CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
_DIGEST = "sha256:60cc59004e8e9bfdbfad641fd5dc34b9a0c67345768ba5d5d957214b686f4fcb"
_NODE = "aks-nodepool1-12345678-vmss000000"
_POD = {"cluster": _CLUSTER, "namespace": "payments", "pod": "api-7d9c6b5f4-x2x9q"}

_SPECS = (
    ActionSpec(
        name="registry.quarantine_tag",
        summary="Quarantine an image tag: `lock` disables reads and writes of the tag in place; `move` imports "
        "the image into a quarantine repository and removes the tag. Undo: registry.release_tag.",
        params=acr.QuarantineTagParams,
        permissions=_azure(
            "repositories/metadata/read",
            "repositories/metadata/write",
            "importImage/action",
            "repositories/content/delete",
        ),
        example={"registry": "myregistry.azurecr.io", "repository": "prod/api", "tag": "latest", "digest": _DIGEST},
        destructive=True,
        inverse="registry.release_tag",
    ),
    ActionSpec(
        name="registry.release_tag",
        summary="Release a quarantined tag: re-enable its reads and writes, or import it back from the "
        "quarantine repository when it was moved.",
        params=acr.ReleaseTagParams,
        permissions=_azure("repositories/metadata/read", "repositories/metadata/write", "importImage/action"),
        example={"registry": "myregistry.azurecr.io", "repository": "prod/api", "tag": "latest"},
        destructive=False,
        inverse=None,
    ),
    ActionSpec(
        name="kubernetes.cordon_node",
        summary="Mark a node unschedulable so no new pod lands on it; running pods stay. "
        "Undo: kubernetes.uncordon_node.",
        params=kubernetes.CordonNodeParams,
        permissions=_k8s("nodes", "get", "list", "patch"),
        example={"cluster": _CLUSTER, "node": _NODE},
        destructive=False,
        inverse="kubernetes.uncordon_node",
    ),
    ActionSpec(
        name="kubernetes.uncordon_node",
        summary="Mark a node schedulable again. Undo: kubernetes.cordon_node.",
        params=kubernetes.UncordonNodeParams,
        permissions=_k8s("nodes", "get", "list", "patch"),
        example={"cluster": _CLUSTER, "node": _NODE},
        destructive=False,
        inverse="kubernetes.cordon_node",
    ),
    ActionSpec(
        name="kubernetes.drain_node",
        summary="Cordon a node and evict its pods through the Eviction API, honouring PodDisruptionBudgets and "
        "skipping DaemonSet and mirror pods. No undo: controllers reschedule evicted pods elsewhere; "
        "kubernetes.uncordon_node reopens the node.",
        params=kubernetes.DrainNodeParams,
        permissions=(*_k8s("nodes", "get", "list", "patch"), *_k8s("pods", "list"), *_k8s("pods/eviction", "create")),
        example={"cluster": _CLUSTER, "node": _NODE, "grace_period_seconds": 30, "timeout_seconds": 600},
        destructive=True,
        inverse=None,
    ),
    ActionSpec(
        name="kubernetes.delete_rbac_object",
        summary="Delete a ClusterRoleBinding, RoleBinding, ClusterRole or Role after snapshotting it. "
        "Undo: kubernetes.restore_object from the snapshot.",
        params=kubernetes.DeleteRbacObjectParams,
        permissions=tuple(p for r in _RBAC for p in _k8s(f"rbac.authorization.k8s.io/{r}", "get", "delete")),
        example={"cluster": _CLUSTER_ID, "kind": "ClusterRoleBinding", "name": "dev-cluster-admin"},
        destructive=True,
        inverse="kubernetes.restore_object",
    ),
    ActionSpec(
        name="kubernetes.restore_object",
        summary="Recreate an object from the snapshot taken before a destructive action. Restoring roles and "
        "bindings needs `bind` and `escalate`: Kubernetes refuses to grant more than the creator holds otherwise.",
        params=kubernetes.RestoreObjectParams,
        permissions=(
            *(p for r in _RBAC for p in _k8s(f"rbac.authorization.k8s.io/{r}", "get", "create")),
            *(p for r in ("clusterroles", "roles") for p in _k8s(f"rbac.authorization.k8s.io/{r}", "bind", "escalate")),
        ),
        example={"cluster": _CLUSTER, "snapshot": "snapshots/2024-11-21/inc-0001/step-0.json"},
        destructive=False,
        inverse=None,
    ),
    ActionSpec(
        name="kubernetes.isolate_pod",
        summary="Cut a pod off the network while it keeps running for forensics: label it and apply a deny-all "
        "NetworkPolicy selecting that label. Undo: kubernetes.release_pod.",
        params=kubernetes.IsolatePodParams,
        permissions=(*_k8s("pods", "get", "patch"), *_k8s("networking.k8s.io/networkpolicies", "get", "create")),
        example=dict(_POD),
        destructive=True,
        inverse="kubernetes.release_pod",
    ),
    ActionSpec(
        name="kubernetes.release_pod",
        summary="Undo an isolation: remove the pod's quarantine label and its deny-all NetworkPolicy.",
        params=kubernetes.ReleasePodParams,
        permissions=(*_k8s("pods", "get", "patch"), *_k8s("networking.k8s.io/networkpolicies", "get", "delete")),
        example=dict(_POD),
        destructive=False,
        inverse=None,
    ),
    ActionSpec(
        name="kubernetes.scale_to_zero",
        summary="Scale a Deployment or StatefulSet to zero replicas, recording the current count. Its own undo "
        "scales back to the recorded count, so it has no separate inverse action.",
        params=kubernetes.ScaleToZeroParams,
        permissions=tuple(
            p
            for r in ("deployments", "statefulsets")
            for p in (*_k8s(f"apps/{r}", "get"), *_k8s(f"apps/{r}/scale", "patch"))
        ),
        example={"cluster": _CLUSTER, "namespace": "payments", "kind": "Deployment", "name": "api"},
        destructive=True,
        inverse=None,
    ),
    ActionSpec(
        name="kubernetes.delete_pod",
        summary="Delete a pod; a controller that owns it starts a fresh one. No undo: the deleted pod "
        "and its local state are gone.",
        params=kubernetes.DeletePodParams,
        permissions=_k8s("pods", "get", "delete"),
        example={**_POD, "grace_period_seconds": 0},
        destructive=True,
        inverse=None,
        reversible=False,
    ),
    ActionSpec(
        name="notify",
        summary="Post a message to Slack, to the playbook's notify channel unless one is named. "
        "Changes nothing, so there is nothing to undo.",
        params=notify.NotifyParams,
        permissions=("slack: chat:write",),
        example={"message": "Kubernetes dashboard exposed on aks-prod-weu", "channel": "#secops-alerts"},
        destructive=False,
        inverse=None,
    ),
)

ACTIONS: Mapping[str, ActionSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})


def get_action(name: str) -> ActionSpec:
    try:
        return ACTIONS[name]
    except KeyError:
        raise UnknownAction(name) from None
