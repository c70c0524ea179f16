"""The Kubernetes actions: preview, apply and undo for every `kubernetes.*` action of the registry.

`handler.KubernetesActions` is the `ActionHandler` the executor calls; `connect` reaches a cluster
(kubeconfig from settings, or AKS with an Entra token); `session` puts a timeout and bounded retries
(`retry`) on every call; `targets` binds an approval to an object version and takes write-once
snapshots; `guards` holds the rails no playbook can lift; `nodes`, `rbac`, `pods` and `workloads`
are the action families. Heavy SDKs (kubernetes, azure-*) load only when a step runs.
"""

from __future__ import annotations

from remediation.actions.k8s.connect import ClusterClients
from remediation.actions.k8s.handler import KubernetesActions
from remediation.actions.k8s.retry import RetryPolicy
from remediation.actions.k8s.settings import KubernetesSettings

__all__ = ["ClusterClients", "KubernetesActions", "KubernetesSettings", "RetryPolicy"]
