"""Service actions: narrow an exposed (LoadBalancer or NodePort) Service, and put it back.

Neighbours: `runtime.KubernetesAction` opens the session it works through; `guards.namespace_allowed`
refuses protected namespaces, and this module refuses the API server's own Service (`default/kubernetes`);
`targets` binds the Service by uid and a fingerprint of its spec (the load balancer's status moves on
its own). Two modes: `source_ranges` sets `spec.loadBalancerSourceRanges` to an allow-list (a
LoadBalancer only: a NodePort ignores it), `cluster_ip` makes the Service type ClusterIP (its node
ports and load balancer are released). The spec fields the step changes are in the write-once
snapshot and in `StepResult.undo`, so undo puts back exactly those, unless someone changed them since.

Writes are JSON merge patches (`application/merge-patch+json`, not the client's default strategic
merge): `ports` is replaced as a whole, so the node ports go with the type and come back with undo.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from remediation.actions.kubernetes import guards
from remediation.actions.kubernetes.params import EXAMPLE_CLUSTER, ClusterParams, Namespace, rules
from remediation.actions.kubernetes.runtime import KubernetesAction
from remediation.actions.kubernetes.session import DRY_RUN, ClusterSession, precondition, write_fresh
from remediation.actions.kubernetes.targets import bind, describe, snapshot_target, version_of
from remediation.actions.runtime import (
    GuardRefused,
    Outcome,
    PermanentFailure,
    Preview,
    StepContext,
    StepResult,
    TargetChanged,
)

MAX_SOURCE_RANGES = 50
MERGE_PATCH = "application/merge-patch+json"
EXPOSED = frozenset({"LoadBalancer", "NodePort"})
# The spec fields this action changes (directly, or because the type change releases them): recorded
# before the step and restored by undo; a field absent before is removed again.
RECORDED = (
    "type",
    "ports",
    "loadBalancerSourceRanges",
    "externalTrafficPolicy",
    "healthCheckNodePort",
    "allocateLoadBalancerNodePorts",
    "loadBalancerClass",
)
# What undo compares with the state the step left: changed since, and undo leaves the Service alone.
WATCHED = ("type", "ports", "loadBalancerSourceRanges")


_DNS_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def _service_name(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError("must be a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters")
    return value


def _cidr(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"{value!r} must be a CIDR with a prefix length (10.0.0.0/8, 203.0.113.7/32)")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR: {exc}") from exc
    if network.prefixlen == 0:
        raise ValueError(f"{value!r} admits every address: not a restriction")
    return str(network)


ServiceName = Annotated[str, AfterValidator(_service_name), Field(description="DNS-1123 label")]
Cidr = Annotated[str, AfterValidator(_cidr), Field(description="IPv4 or IPv6 CIDR, not /0")]


class RestrictServiceParams(ClusterParams):
    namespace: Namespace
    service: ServiceName
    mode: Literal["source_ranges", "cluster_ip"] = Field(
        default="source_ranges",
        description="source_ranges: set loadBalancerSourceRanges to source_ranges; cluster_ip: make it type ClusterIP",
    )
    source_ranges: list[Cidr] = Field(
        default=[],
        max_length=MAX_SOURCE_RANGES,
        description="the allow-list; required for mode source_ranges, not allowed for cluster_ip",
    )

    @model_validator(mode="after")
    def _ranges_match_mode(self) -> RestrictServiceParams:
        if self.mode == "source_ranges" and not self.source_ranges:
            raise ValueError("mode source_ranges needs a non-empty source_ranges allow-list")
        if self.mode == "cluster_ip" and self.source_ranges:
            raise ValueError("mode cluster_ip takes no source_ranges")
        if len(set(self.source_ranges)) != len(self.source_ranges):
            raise ValueError("source_ranges lists a CIDR twice")
        return self


class RestrictService(KubernetesAction[RestrictServiceParams]):
    name = "kubernetes.restrict_service"
    summary = (
        "Narrow an exposed LoadBalancer or NodePort Service: set loadBalancerSourceRanges to an allow-list "
        "(mode source_ranges, LoadBalancer only) or make it type ClusterIP (mode cluster_ip), recording its "
        "type, ports and source ranges. Its own undo restores exactly those, so it has no separate inverse action."
    )
    Params = RestrictServiceParams
    permissions = rules("services", "get", "patch")
    example = {
        "cluster": EXAMPLE_CLUSTER,
        "namespace": "payments",
        "service": "api-public",
        "mode": "source_ranges",
        "source_ranges": ["10.20.0.0/16", "203.0.113.0/24"],
    }
    destructive = True  # it cuts traffic from everyone outside the allow-list

    def preview_on(self, s: ClusterSession, params: RestrictServiceParams, ctx: StepContext) -> Preview:
        return preview(s, params, ctx, action=self.name)

    def apply_on(self, s: ClusterSession, params: RestrictServiceParams, ctx: StepContext) -> StepResult:
        return apply(s, params, ctx, action=self.name)

    def undo_on(
        self, s: ClusterSession, params: RestrictServiceParams, result: StepResult, ctx: StepContext
    ) -> StepResult:
        return undo(s, params, result, ctx)


# --- reading and judging ---------------------------------------------------------------------------


def read_service(s: ClusterSession, namespace: str, name: str) -> dict[str, Any]:
    svc: dict[str, Any] = s.call(
        s.core.read_namespaced_service, name, namespace, what=f"read Service {namespace}/{name}"
    )
    return svc


def allowed(params: RestrictServiceParams, *, settings: Any) -> None:
    guards.namespace_allowed(params.namespace, settings=settings)
    if (params.namespace, params.service) == ("default", "kubernetes"):
        raise GuardRefused("guard 'API server Service': default/kubernetes is the API server's own Service")


def _spec(svc: dict[str, Any]) -> dict[str, Any]:
    return dict(svc.get("spec") or {})


def service_type(svc: dict[str, Any]) -> str:
    return str(_spec(svc).get("type") or "ClusterIP")


def source_ranges(svc: dict[str, Any]) -> list[str]:
    return [str(r) for r in _spec(svc).get("loadBalancerSourceRanges") or []]


def recorded(svc: dict[str, Any]) -> dict[str, Any]:
    """The fields of RECORDED the Service has (absent ones are absent here too)."""
    spec = _spec(svc)
    return {k: spec[k] for k in RECORDED if spec.get(k) is not None}


def watched(svc: dict[str, Any]) -> dict[str, Any]:
    spec = _spec(svc)
    return {"type": service_type(svc), "ports": spec.get("ports") or [], "ranges": sorted(source_ranges(svc))}


def _within(ranges: list[str], allow: list[str]) -> bool:
    """Every range is inside some allowed network (so setting the allow-list would widen, not narrow)."""
    allowed_nets = [ipaddress.ip_network(a) for a in allow]
    for r in ranges:
        try:
            net = ipaddress.ip_network(r.strip(), strict=False)
        except ValueError:
            return False
        if not any(net.version == a.version and net.subnet_of(a) for a in allowed_nets):  # type: ignore[arg-type]
            return False
    return True


def nothing_to_do(svc: dict[str, Any], params: RestrictServiceParams) -> str | None:
    """Why the Service needs no change, or None when it does."""
    kind = service_type(svc)
    if kind not in EXPOSED:
        return f"type {kind}: not exposed: nothing to do"
    if params.mode == "source_ranges" and kind == "LoadBalancer":
        ranges = source_ranges(svc)
        if ranges and _within(ranges, params.source_ranges):
            return f"loadBalancerSourceRanges {ranges} are within the allow-list already: nothing to do"
    return None


def _refuse_unnarrowable(svc: dict[str, Any], params: RestrictServiceParams) -> None:
    if params.mode == "source_ranges" and service_type(svc) == "NodePort":
        raise PermanentFailure(
            f"Service {params.namespace}/{params.service} is a NodePort: loadBalancerSourceRanges does not "
            "restrict node ports; use mode cluster_ip"
        )


def wanted_spec(svc: dict[str, Any], params: RestrictServiceParams) -> dict[str, Any]:
    """The merge patch's `spec`: what the mode changes, and nulls for the fields it releases."""
    if params.mode == "source_ranges":
        return {"loadBalancerSourceRanges": list(params.source_ranges)}
    ports = [{k: v for k, v in port.items() if k != "nodePort"} for port in _spec(svc).get("ports") or []]
    released = {k: None for k in RECORDED if k not in ("type", "ports")}
    return {**released, "type": "ClusterIP", "ports": ports}


def _changes(svc: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    before = _spec(svc)
    return {
        f"spec.{k}": {"from": before.get(k), "to": v}
        for k, v in spec.items()
        if before.get(k) != v and not (v is None and k not in before)
    }


def patch_service(
    s: ClusterSession, svc: dict[str, Any], spec: dict[str, Any], *, what: str, dry_run: bool = False
) -> dict[str, Any]:
    meta = svc["metadata"]
    body = {"metadata": precondition(svc), "spec": spec}
    extra: dict[str, Any] = {"dry_run": DRY_RUN} if dry_run else {}
    patched: dict[str, Any] = s.call(
        s.core.patch_namespaced_service, meta["name"], meta["namespace"], body,
        _content_type=MERGE_PATCH, what=what, **extra,
    )  # fmt: skip
    return patched


# --- the steps -------------------------------------------------------------------------------------


def preview(s: ClusterSession, params: RestrictServiceParams, ctx: StepContext, *, action: str) -> Preview:
    allowed(params, settings=s.settings)
    svc = read_service(s, params.namespace, params.service)
    target = version_of("Service", svc)
    label = f"Service {params.namespace}/{params.service}"
    reason = nothing_to_do(svc, params)
    if reason is not None:
        return Preview(action, f"{label}: {reason}", target=target, noop=True)
    _refuse_unnarrowable(svc, params)
    spec = wanted_spec(svc, params)
    patch_service(s, svc, spec, what=f"dry-run patch {label}", dry_run=True)
    changes = _changes(svc, spec)
    if params.mode == "source_ranges":
        summary = f"{label} will accept traffic only from {', '.join(params.source_ranges)}"
        changes.setdefault("spec.type", {"from": service_type(svc), "to": service_type(svc)})
    else:
        summary = f"{label} will become type ClusterIP (was {service_type(svc)}): no traffic from outside the cluster"
    return Preview(action, summary, changes, target)


def apply(s: ClusterSession, params: RestrictServiceParams, ctx: StepContext, *, action: str) -> StepResult:
    allowed(params, settings=s.settings)
    svc = read_service(s, params.namespace, params.service)
    target = version_of("Service", svc)
    bind(ctx, target)
    label = f"Service {params.namespace}/{params.service}"
    reason = nothing_to_do(svc, params)
    if reason is None:
        _refuse_unnarrowable(svc, params)  # before anything is stored
    before: dict[str, Any] = snapshot_target(ctx, target=target, state={"spec": recorded(svc)})["spec"]
    if reason is not None:
        undo = {"before": before, "after": watched(svc)}
        if before == recorded(svc):
            return StepResult(action, Outcome.NOOP, reason, target=target, snapshot=ctx.snapshot_key, undo=undo)
        message = "narrowed by an earlier attempt"
        return StepResult(action, Outcome.APPLIED, message, target=target, snapshot=ctx.snapshot_key, undo=undo)

    def write(current: dict[str, Any]) -> dict[str, Any]:
        if current is not svc and version_of("Service", current).version != target.version:
            raise TargetChanged(f"{describe(target)} was modified while the step ran: approve again")
        return patch_service(s, current, wanted_spec(current, params), what=f"patch {label}")

    patched = write_fresh(
        s, svc, read=lambda: read_service(s, params.namespace, params.service), write=write, what=f"patch {label}"
    )
    undo = {"before": before, "after": watched(patched)}
    if params.mode == "source_ranges":
        message = f"loadBalancerSourceRanges {source_ranges(svc) or 'unset'} -> {list(params.source_ranges)}"
    else:
        message = f"type {service_type(svc)} -> ClusterIP; node ports and load balancer released"
    return StepResult(action, Outcome.APPLIED, message, target=target, snapshot=ctx.snapshot_key, undo=undo)


def undo(s: ClusterSession, params: RestrictServiceParams, result: StepResult, ctx: StepContext) -> StepResult:
    before, after = result.undo.get("before"), result.undo.get("after")
    if not isinstance(before, dict) or not isinstance(after, dict):
        return StepResult(result.action, Outcome.NOOP, "nothing recorded to undo", target=result.target)
    label = f"Service {params.namespace}/{params.service}"
    svc = read_service(s, params.namespace, params.service)
    if recorded(svc) == before:
        message = "the Service is as it was before the step: nothing to undo"
        return StepResult(result.action, Outcome.NOOP, message, target=result.target)
    if watched(svc) != after:
        message = (
            f"someone changed {label} since the step (now type {service_type(svc)}, "
            f"loadBalancerSourceRanges {source_ranges(svc)}): left alone"
        )
        return StepResult(result.action, Outcome.NOOP, message, target=result.target)

    def write(current: dict[str, Any]) -> dict[str, Any] | None:
        if watched(current) != after:
            return None
        restore = {k: before.get(k) for k in RECORDED}
        return patch_service(s, current, restore, what=f"restore {label}")

    restored = write_fresh(
        s, svc, read=lambda: read_service(s, params.namespace, params.service), write=write, what=f"restore {label}"
    )
    if restored is None:
        message = f"someone changed {label} while undo ran: left alone"
        return StepResult(result.action, Outcome.NOOP, message, target=result.target)
    ranges = before.get("loadBalancerSourceRanges")
    message = (
        f"restored type {before.get('type', 'ClusterIP')}, its ports and loadBalancerSourceRanges {ranges or 'unset'}"
    )
    return StepResult(result.action, Outcome.UNDONE, message, target=result.target)


ACTIONS = (RestrictService,)
