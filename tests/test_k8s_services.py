"""kubernetes.restrict_service against kmock over HTTP: both modes, noop, guards, approval binding, undo."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from kube_api import CLUSTER, SERVICES, Harness, service
from remediation.actions.kubernetes import RestrictServiceParams
from remediation.actions.kubernetes.services import MAX_SOURCE_RANGES, MERGE_PATCH
from remediation.actions.runtime import GuardRefused, Outcome, PermanentFailure, TargetChanged

RESTRICT = "kubernetes.restrict_service"
ALLOW = ["10.20.0.0/16", "203.0.113.0/24"]

pytest_plugins = ["kube_api"]  # the `kube` and `k8s` fixtures


def params(name: str = "web", namespace: str = "payments", **extra: Any) -> RestrictServiceParams:
    given: dict[str, Any] = {"mode": "source_ranges", "source_ranges": ALLOW, **extra}
    return RestrictServiceParams(cluster=CLUSTER, namespace=namespace, service=name, **given)


def cluster_ip(name: str = "web", namespace: str = "payments") -> RestrictServiceParams:
    return RestrictServiceParams(cluster=CLUSTER, namespace=namespace, service=name, mode="cluster_ip")


def spec(k8s: Harness, name: str = "web", namespace: str = "payments") -> dict[str, Any]:
    obj = k8s.emu.get(SERVICES, namespace, name)
    assert obj is not None
    return dict(obj["spec"])


def writes(k8s: Harness) -> list[Any]:
    return [r for r in k8s.emu if r.method == "PATCH" and not r.params.get("dryRun")]


# --- parameters ---


def test_the_parameters_validate_cidrs_names_and_the_mode() -> None:
    assert params(source_ranges=["2001:db8:0:0::/64"]).source_ranges == ["2001:db8::/64"]  # canonical form
    assert cluster_ip().source_ranges == []
    bad: list[dict[str, Any]] = [
        {"source_ranges": []},  # source_ranges mode needs an allow-list
        {"source_ranges": ["10.0.0.1/8"]},  # host bits set
        {"source_ranges": ["10.0.0.1"]},  # no prefix length
        {"source_ranges": ["0.0.0.0/0"]},  # everyone: not a restriction
        {"source_ranges": ["::/0"]},
        {"source_ranges": ["300.1.1.0/24"]},
        {"source_ranges": ["10.0.0.0/8", "10.0.0.0/8"]},
        {"source_ranges": [f"10.0.{i}.0/24" for i in range(MAX_SOURCE_RANGES + 1)]},
        {"mode": "cluster_ip"},  # cluster_ip takes no source_ranges
        {"mode": "open"},
        {"service": "Web_1"},  # not a DNS-1123 label
        {"spec": {}},  # unknown parameter
    ]
    for extra in bad:
        with pytest.raises(ValidationError):
            given = {"mode": "source_ranges", "source_ranges": ALLOW, "service": "web", **extra}
            RestrictServiceParams(cluster=CLUSTER, namespace="payments", **given)


# --- source_ranges ---


def test_source_ranges_previews_applies_and_undo_restores_exactly(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web"))
    original = spec(k8s)

    preview = k8s.handler.preview(RESTRICT, params(), k8s.ctx())
    assert not preview.noop and preview.target is not None and preview.target.version.startswith("spec:")
    assert preview.changes["spec.loadBalancerSourceRanges"] == {"from": None, "to": ALLOW}
    assert preview.changes["spec.type"] == {"from": "LoadBalancer", "to": "LoadBalancer"}
    assert spec(k8s) == original and not writes(k8s)  # a dry run only

    result = k8s.handler.apply(RESTRICT, params(), k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.APPLIED
    after = spec(k8s)
    assert after["loadBalancerSourceRanges"] == ALLOW and after["type"] == "LoadBalancer"
    assert after["ports"] == original["ports"]
    [write] = writes(k8s)
    assert write.headers["Content-Type"] == MERGE_PATCH
    assert write.data["metadata"]["resourceVersion"]  # the precondition
    snapshot = k8s.snapshots.load(result.snapshot)
    assert snapshot["spec"]["type"] == "LoadBalancer" and "loadBalancerSourceRanges" not in snapshot["spec"]

    undone = k8s.handler.undo(RESTRICT, params(), result, k8s.ctx())
    assert undone.outcome is Outcome.UNDONE
    assert spec(k8s) == original


def test_source_ranges_replaces_a_wider_allow_list(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web", source_ranges=["0.0.0.0/0"]))
    preview = k8s.handler.preview(RESTRICT, params(), k8s.ctx())
    assert preview.changes["spec.loadBalancerSourceRanges"] == {"from": ["0.0.0.0/0"], "to": ALLOW}
    result = k8s.handler.apply(RESTRICT, params(), k8s.ctx(expected=preview.target))
    assert spec(k8s)["loadBalancerSourceRanges"] == ALLOW
    k8s.handler.undo(RESTRICT, params(), result, k8s.ctx())
    assert spec(k8s)["loadBalancerSourceRanges"] == ["0.0.0.0/0"]


def test_source_ranges_on_a_node_port_is_refused_and_points_at_cluster_ip(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web", type="NodePort"))
    with pytest.raises(PermanentFailure, match="use mode cluster_ip"):
        k8s.handler.preview(RESTRICT, params(), k8s.ctx())
    with pytest.raises(PermanentFailure, match="use mode cluster_ip"):
        k8s.handler.apply(RESTRICT, params(), k8s.ctx())
    assert not writes(k8s)
    with pytest.raises(LookupError):
        k8s.snapshots.load("inc-0001/step-0.json")  # refused before anything was stored


# --- cluster_ip ---


@pytest.mark.parametrize("kind", ["LoadBalancer", "NodePort"])
def test_cluster_ip_drops_node_ports_and_undo_restores_them(k8s: Harness, kind: str) -> None:
    k8s.emu.put(
        SERVICES, service("web", type=kind, source_ranges=["198.51.100.0/24"] if kind == "LoadBalancer" else None)
    )
    original = spec(k8s)

    preview = k8s.handler.preview(RESTRICT, cluster_ip(), k8s.ctx())
    assert preview.changes["spec.type"] == {"from": kind, "to": "ClusterIP"}
    assert "nodePort" not in preview.changes["spec.ports"]["to"][0]
    assert preview.changes["spec.externalTrafficPolicy"] == {"from": "Cluster", "to": None}

    result = k8s.handler.apply(RESTRICT, cluster_ip(), k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.APPLIED
    after = spec(k8s)
    assert after["type"] == "ClusterIP" and "nodePort" not in after["ports"][0]
    assert after["ports"][0]["port"] == 443 and after["clusterIP"] == original["clusterIP"]
    for released in ("loadBalancerSourceRanges", "externalTrafficPolicy", "allocateLoadBalancerNodePorts"):
        assert released not in after

    undone = k8s.handler.undo(RESTRICT, cluster_ip(), result, k8s.ctx())
    assert undone.outcome is Outcome.UNDONE and f"restored type {kind}" in undone.message
    assert spec(k8s) == original  # type, node ports, source ranges, policy: exactly as before


# --- nothing to do ---


@pytest.mark.parametrize(
    ("svc", "mode", "why"),
    [
        (service("web", type="ClusterIP"), "source_ranges", "not exposed"),
        (service("web", type="ExternalName"), "cluster_ip", "not exposed"),
        (service("web", source_ranges=ALLOW), "source_ranges", "within the allow-list"),
        (service("web", source_ranges=["10.20.30.0/24"]), "source_ranges", "within the allow-list"),  # narrower
    ],
)
def test_a_service_already_narrowed_or_not_exposed_is_a_noop(
    k8s: Harness, svc: dict[str, Any], mode: str, why: str
) -> None:
    k8s.emu.put(SERVICES, svc)
    p = cluster_ip() if mode == "cluster_ip" else params()
    preview = k8s.handler.preview(RESTRICT, p, k8s.ctx())
    assert preview.noop and why in preview.summary
    result = k8s.handler.apply(RESTRICT, p, k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.NOOP and why in result.message
    assert not writes(k8s)
    undone = k8s.handler.undo(RESTRICT, p, result, k8s.ctx())
    assert undone.outcome is Outcome.NOOP and not writes(k8s)


# --- guard rails ---


@pytest.mark.parametrize(
    ("namespace", "name", "rule"),
    [("kube-system", "web", "protected namespace"), ("default", "kubernetes", "API server Service")],
)
def test_protected_services_are_refused_before_any_read(k8s: Harness, namespace: str, name: str, rule: str) -> None:
    k8s.emu.put(SERVICES, service(name, namespace=namespace))
    for step in (k8s.handler.preview, k8s.handler.apply):
        with pytest.raises(GuardRefused, match=rule):
            step(RESTRICT, params(name, namespace), k8s.ctx())
    assert not [r for r in k8s.emu if r.method in ("GET", "PATCH")]
    assert spec(k8s, name, namespace)["type"] == "LoadBalancer"


def test_a_namespace_protected_by_settings_is_refused(kube: Any, tmp_path: Any) -> None:
    from kube_api import make_harness

    h = make_harness(kube, tmp_path, protected_namespaces=frozenset({"kube-system", "payments"}))
    h.emu.put(SERVICES, service("web"))
    with pytest.raises(GuardRefused, match="protected namespace"):
        h.handler.apply(RESTRICT, params(), h.ctx())


def test_a_service_modified_since_approval_is_refused(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web"))
    preview = k8s.handler.preview(RESTRICT, params(), k8s.ctx())
    changed = service("web")
    changed["metadata"]["uid"] = k8s.emu.get(SERVICES, "payments", "web")["metadata"]["uid"]
    changed["spec"]["ports"].append({"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080})
    k8s.emu.put(SERVICES, changed)
    with pytest.raises(TargetChanged, match="modified since approval"):
        k8s.handler.apply(RESTRICT, params(), k8s.ctx(expected=preview.target))
    assert not writes(k8s) and "loadBalancerSourceRanges" not in spec(k8s)


def test_a_load_balancer_status_change_does_not_stale_the_approval(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web"))
    preview = k8s.handler.preview(RESTRICT, params(), k8s.ctx())
    moved = k8s.emu.get(SERVICES, "payments", "web")
    moved["status"] = {"loadBalancer": {"ingress": [{"ip": "20.9.9.9"}]}}
    k8s.emu.put(SERVICES, moved)  # a new resourceVersion, the same spec
    result = k8s.handler.apply(RESTRICT, params(), k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.APPLIED


def test_a_retry_after_a_crash_reports_the_earlier_write(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web"))
    original = spec(k8s)
    preview = k8s.handler.preview(RESTRICT, cluster_ip(), k8s.ctx())
    first = k8s.handler.apply(RESTRICT, cluster_ip(), k8s.ctx(expected=preview.target))
    again = k8s.handler.apply(RESTRICT, cluster_ip(), k8s.ctx(expected=preview.target))
    assert again.outcome is Outcome.APPLIED and "earlier attempt" in again.message
    assert again.undo == first.undo
    k8s.handler.undo(RESTRICT, cluster_ip(), again, k8s.ctx())
    assert spec(k8s) == original


# --- undo leaves a changed Service alone ---


def test_undo_leaves_a_service_changed_since_the_step_alone(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web"))
    result = k8s.handler.apply(RESTRICT, params(), k8s.ctx())
    edited = k8s.emu.get(SERVICES, "payments", "web")
    edited["spec"] = {**edited["spec"], "loadBalancerSourceRanges": ["192.0.2.0/24"]}  # a person tightened it
    k8s.emu.put(SERVICES, edited)
    before = len(writes(k8s))

    undone = k8s.handler.undo(RESTRICT, params(), result, k8s.ctx())
    assert undone.outcome is Outcome.NOOP and "someone changed" in undone.message and "left alone" in undone.message
    assert spec(k8s)["loadBalancerSourceRanges"] == ["192.0.2.0/24"] and len(writes(k8s)) == before


def test_undo_leaves_a_service_made_exposed_again_alone(k8s: Harness) -> None:
    k8s.emu.put(SERVICES, service("web", type="NodePort"))
    result = k8s.handler.apply(RESTRICT, cluster_ip(), k8s.ctx())
    edited = k8s.emu.get(SERVICES, "payments", "web")
    edited["spec"] = {**edited["spec"], "type": "LoadBalancer"}
    k8s.emu.put(SERVICES, edited)
    undone = k8s.handler.undo(RESTRICT, cluster_ip(), result, k8s.ctx())
    assert undone.outcome is Outcome.NOOP and "left alone" in undone.message
    assert spec(k8s)["type"] == "LoadBalancer"
