"""Parameters of the Kubernetes actions: nodes, pods, workloads and RBAC objects on AKS clusters.

One model per action, registered under its playbook name in `remediation.actions.registry`. The
name rules are Kubernetes' own (DNS-1123 labels and subdomains, RBAC path-segment names), so a
playbook or a Signal carrying a name the API server would refuse is stopped before approval.
The implementations (preview, apply, undo) come with the executor.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from remediation.actions.params import ActionParams

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


class NodeParams(ActionParams):
    cluster: Cluster
    node: NodeName


class CordonNodeParams(NodeParams):
    pass


class UncordonNodeParams(NodeParams):
    pass


class DrainNodeParams(NodeParams):
    grace_period_seconds: int | None = Field(default=None, ge=0, description="null: each pod's own grace period")
    timeout_seconds: int = Field(default=600, gt=0)
    max_concurrency: int = Field(default=5, ge=1, le=50, description="evictions in flight at once")


class DeleteRbacObjectParams(ActionParams):
    cluster: Cluster
    kind: Literal["ClusterRoleBinding", "RoleBinding", "ClusterRole", "Role"]
    name: RbacName
    namespace: Namespace | None = Field(
        default=None,
        validate_default=True,
        description="DNS-1123 label; required for RoleBinding and Role, left out otherwise",
    )

    # A field validator rather than a model validator, so the error names `namespace` and the
    # playbook loader can point at the offending parameter.
    @field_validator("namespace")
    @classmethod
    def _namespace_fits_kind(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind in NAMESPACED_RBAC_KINDS and value is None:
            raise ValueError(f"required for kind {kind}")
        if kind in CLUSTER_RBAC_KINDS and value is not None:
            raise ValueError(f"must be left out for kind {kind}, which is cluster-wide")
        return value


class RestoreObjectParams(ActionParams):
    cluster: Cluster
    snapshot: str = Field(min_length=1, max_length=1024, description="the snapshot id an undo record names")


class PodParams(ActionParams):
    cluster: Cluster
    namespace: Namespace
    pod: PodName


class IsolatePodParams(PodParams):
    pass


class ReleasePodParams(PodParams):
    pass


class DeletePodParams(PodParams):
    grace_period_seconds: int | None = Field(default=None, ge=0)


class ScaleToZeroParams(ActionParams):
    cluster: Cluster
    namespace: Namespace
    kind: Literal["Deployment", "StatefulSet"]
    name: WorkloadName
