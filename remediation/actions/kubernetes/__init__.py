"""The Kubernetes actions: nodes, pods, workloads, Services and RBAC objects on AKS (or any) clusters.

One class per action, its parameter model beside it: `nodes` (cordon, uncordon, drain), `pods`
(isolate, release, delete), `workloads` (scale to zero), `rbac` (delete, restore), `services`
(restrict an exposed Service). They share `runtime` (the family's runtime and base class),
`connect` (kubeconfig from settings, or AKS with an Entra token), `session` (a timeout and bounded
retries on every call; `errors` classifies failures), `targets` (approval binding and write-once
snapshots) and `guards` (the rails no playbook can lift).
Heavy SDKs (kubernetes, azure-*) load only when a step runs.
"""

from __future__ import annotations

from remediation.actions.kubernetes import nodes, pods, rbac, services, workloads
from remediation.actions.kubernetes.connect import ClusterClients
from remediation.actions.kubernetes.nodes import (
    CordonNodeParams,
    DrainNodeParams,
    UncordonNodeParams,
)
from remediation.actions.kubernetes.pods import (
    DeletePodParams,
    IsolatePodParams,
    ReleasePodParams,
)
from remediation.actions.kubernetes.rbac import (
    DeleteRbacObjectParams,
    RestoreObjectParams,
)
from remediation.actions.kubernetes.runtime import KubernetesAction, KubernetesRuntime
from remediation.actions.kubernetes.services import RestrictServiceParams
from remediation.actions.kubernetes.workloads import ScaleToZeroParams
from remediation.settings import KubernetesSettings

# The family's actions, in catalogue order: each module lists its own below its classes.
ACTIONS = (*nodes.ACTIONS, *rbac.ACTIONS, *pods.ACTIONS, *workloads.ACTIONS, *services.ACTIONS)

__all__ = [
    "ACTIONS",
    "ClusterClients",
    "CordonNodeParams",
    "DeletePodParams",
    "DeleteRbacObjectParams",
    "DrainNodeParams",
    "IsolatePodParams",
    "KubernetesAction",
    "KubernetesRuntime",
    "KubernetesSettings",
    "ReleasePodParams",
    "RestoreObjectParams",
    "RestrictServiceParams",
    "ScaleToZeroParams",
    "UncordonNodeParams",
]
