"""The parameter types every Kubernetes action shares: cluster, namespace and object names, permissions.

Each action's own model lives with the action (`nodes`, `rbac`, `pods`, `workloads`). The name
rules are Kubernetes' own (DNS-1123 labels and subdomains, RBAC path-segment names), so a
playbook or a Signal carrying a name the API server would refuse is stopped before approval.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

from remediation.actions.base import ActionParams

_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN_PART = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_AKS_ID = re.compile(
    r"^/subscriptions/[^/\s]+/resourcegroups/[^/\s]+/providers/microsoft\.containerservice/managedclusters/[^/\s]+$",
    re.IGNORECASE,
)
_NOT_IN_NAMES = re.compile(r"[/%\x00-\x1f\x7f]")
# A cluster name from settings: AKS's own naming rule (letters, digits, '-', '_', '.').
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")

CLUSTER_RBAC_KINDS = frozenset({"ClusterRoleBinding", "ClusterRole"})
NAMESPACED_RBAC_KINDS = frozenset({"RoleBinding", "Role"})


def _cluster(value: str) -> str:
    if not (_AKS_ID.fullmatch(value) or _CLUSTER_NAME.fullmatch(value)):
        raise ValueError(
            "must be an AKS cluster resource id (/subscriptions/.../managedClusters/NAME) or a cluster name"
        )
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters")
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not all(_DNS_SUBDOMAIN_PART.fullmatch(part) for part in value.split(".")):
        raise ValueError(
            "must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.', at most 253 characters"
        )
    return value


def _object_name(value: str) -> str:
    """RBAC names only have to be a URL path segment: `system:controller:x` is a real name."""
    if not value or len(value) > 253 or value in {".", ".."} or _NOT_IN_NAMES.search(value):
        raise ValueError(
            "must be a Kubernetes object name: not empty, no '/', '%' or control characters, at most 253 characters"
        )
    return value


# The descriptions feed the generated action catalogue.
Cluster = Annotated[
    str, AfterValidator(_cluster), Field(description="AKS cluster resource id or a configured cluster name")
]
Namespace = Annotated[str, AfterValidator(_dns_label), Field(description="DNS-1123 label")]
PodName = Annotated[str, AfterValidator(_dns_subdomain), Field(description="DNS-1123 subdomain")]
NodeName = Annotated[str, AfterValidator(_dns_subdomain), Field(description="DNS-1123 subdomain")]
WorkloadName = Annotated[str, AfterValidator(_dns_subdomain), Field(description="DNS-1123 subdomain")]
RbacName = Annotated[str, AfterValidator(_object_name), Field(description="any object name; ':' allowed")]


class ClusterParams(ActionParams):
    """The base of every Kubernetes action's parameters: each names the cluster it works on."""

    cluster: Cluster


def rules(resource: str, *verbs: str) -> tuple[str, ...]:
    """Permissions in the catalogue's form: `kubernetes: <[group/]resource> <verb>`, one per verb."""
    return tuple(f"kubernetes: {resource} {verb}" for verb in verbs)


RBAC_RESOURCES = ("clusterrolebindings", "rolebindings", "clusterroles", "roles")
EXAMPLE_CLUSTER = "aks-prod-weu"  # a configured cluster name; an AKS resource id is accepted too
EXAMPLE_CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
EXAMPLE_POD = {"cluster": EXAMPLE_CLUSTER, "namespace": "payments", "pod": "api-7d9c6b5f4-x2x9q"}
