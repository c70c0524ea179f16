"""The Kubernetes actions: nodes, pods, workloads and RBAC objects on AKS (or any) clusters.

One class per action, its parameter model beside it: `nodes` (cordon, uncordon, drain), `pods`
(isolate, release, delete), `workloads` (scale to zero), `rbac` (delete, restore). They share
`runtime` (the family's runtime and base class), `connect` (kubeconfig from settings, or AKS with an
Entra token), `session` (a timeout and bounded retries on every call; `errors` classifies failures),
`targets` (approval binding and write-once snapshots) and `guards` (the rails no playbook can lift).
Heavy SDKs (kubernetes, azure-*) load only when a step runs.
"""

from __future__ import annotations

from remediation.actions.kubernetes.connect import ClusterClients
from remediation.actions.kubernetes.nodes import (
    CordonNode,
    CordonNodeParams,
    DrainNode,
    DrainNodeParams,
    UncordonNode,
    UncordonNodeParams,
)
from remediation.actions.kubernetes.pods import (
    DeletePod,
    DeletePodParams,
    IsolatePod,
    IsolatePodParams,
    ReleasePod,
    ReleasePodParams,
)
from remediation.actions.kubernetes.rbac import (
    DeleteRbacObject,
    DeleteRbacObjectParams,
    RestoreObject,
    RestoreObjectParams,
)
from remediation.actions.kubernetes.runtime import KubernetesAction, KubernetesRuntime
from remediation.actions.kubernetes.workloads import ScaleToZero, ScaleToZeroParams
from remediation.settings import KubernetesSettings

ACTIONS = (
    CordonNode,
    UncordonNode,
    DrainNode,
    DeleteRbacObject,
    RestoreObject,
    IsolatePod,
    ReleasePod,
    ScaleToZero,
    DeletePod,
)

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
    "ScaleToZeroParams",
    "UncordonNodeParams",
]
