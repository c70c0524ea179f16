"""RBAC, pod and workload actions against kmock over HTTP: preview, apply, undo, guards, restore."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from kube_api import CLUSTER, DEPLOYMENTS, NETPOLS, PODS, RBAC, STATEFULSETS, Harness, pod
from remediation.actions.kubernetes import (
    DeletePodParams,
    DeleteRbacObjectParams,
    IsolatePodParams,
    ReleasePodParams,
    RestoreObjectParams,
    ScaleToZeroParams,
)
from remediation.actions.kubernetes.pods import ISOLATED_LABEL, policy_name
from remediation.actions.runtime import GuardRefused, Outcome, PermanentFailure, SnapshotRefused, TargetChanged
from remediation.store.snapshots import InMemorySnapshotStore

DELETE_RBAC, RESTORE = "kubernetes.delete_rbac_object", "kubernetes.restore_object"
ISOLATE, RELEASE, DELETE_POD, SCALE = (
    "kubernetes.isolate_pod", "kubernetes.release_pod", "kubernetes.delete_pod", "kubernetes.scale_to_zero",
)  # fmt: skip
RULES = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]},
         {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}]  # fmt: skip
SUBJECTS = [{"kind": "User", "name": "mallory@example.com", "apiGroup": "rbac.authorization.k8s.io"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "build"}]  # fmt: skip

pytest_plugins = ["kube_api"]  # the `kube` and `k8s` fixtures


def binding(name: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": labels or {"team": "dev"}, "annotations": {"why": "test"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": SUBJECTS}  # fmt: skip


def role(kind: str, name: str, namespace: str | None = None, **meta: Any) -> dict[str, Any]:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {}), **meta}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": metadata, "rules": RULES}


# --- RBAC ---


def test_delete_rbac_preview_apply_and_restore_by_undo(k8s: Harness) -> None:
    original = k8s.emu.put(RBAC["ClusterRoleBinding"], binding("dev-cluster-admin"))
    params = DeleteRbacObjectParams(cluster=CLUSTER, kind="ClusterRoleBinding", name="dev-cluster-admin")
    preview = k8s.handler.preview(DELETE_RBAC, params, k8s.ctx())
    assert preview.changes["subjects"] == SUBJECTS and k8s.emu.get(
        RBAC["ClusterRoleBinding"], None, "dev-cluster-admin"
    )
    result = k8s.handler.apply(DELETE_RBAC, params, k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.APPLIED
    assert k8s.emu.get(RBAC["ClusterRoleBinding"], None, "dev-cluster-admin") is None
    assert k8s.snapshots.load(result.snapshot)["object"]["subjects"] == SUBJECTS
    undone = k8s.handler.undo(DELETE_RBAC, params, result, k8s.ctx())
    assert undone.outcome is Outcome.UNDONE
    restored = k8s.emu.get(RBAC["ClusterRoleBinding"], None, "dev-cluster-admin")
    assert restored["subjects"] == original["subjects"] and restored["roleRef"] == original["roleRef"]
    assert restored["metadata"]["labels"] == original["metadata"]["labels"]
    assert restored["metadata"]["uid"] != original["metadata"]["uid"]  # created anew, not a copied uid


@pytest.mark.parametrize(("kind", "namespace"), [("ClusterRole", None), ("Role", "payments")])
def test_restore_object_recreates_rules_without_server_fields(k8s: Harness, kind: str, namespace: str | None) -> None:
    k8s.emu.put(RBAC[kind], role(kind, "reader", namespace))
    delete = DeleteRbacObjectParams(cluster=CLUSTER, kind=kind, name="reader", namespace=namespace)
    result = k8s.handler.apply(DELETE_RBAC, delete, k8s.ctx())
    restore = RestoreObjectParams(cluster=CLUSTER, snapshot=result.snapshot)
    preview = k8s.handler.preview(RESTORE, restore, k8s.ctx(step=1))
    assert preview.changes["rules"] == RULES and k8s.emu.get(RBAC[kind], namespace, "reader") is None
    restored = k8s.handler.apply(RESTORE, restore, k8s.ctx(step=1, expected=preview.target))
    assert restored.outcome is Outcome.APPLIED
    assert k8s.emu.get(RBAC[kind], namespace, "reader")["rules"] == RULES
    create = next(r for r in k8s.emu if r.method == "POST" and not r.params.get("dryRun"))
    assert not {"uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"} & set(
        create.data["metadata"]
    )
    again = k8s.ctx(step=2, expected=preview.target)
    assert k8s.handler.apply(RESTORE, restore, again).outcome is Outcome.NOOP  # exists as snapshotted
    assert k8s.handler.undo(RESTORE, restore, restored, k8s.ctx(step=1)).outcome is Outcome.UNDONE
    assert k8s.emu.get(RBAC[kind], namespace, "reader") is None


def test_restore_object_restores_only_the_snapshot_its_preview_showed(k8s: Harness) -> None:
    k8s.emu.put(RBAC["ClusterRole"], role("ClusterRole", "reader"))
    delete = DeleteRbacObjectParams(cluster=CLUSTER, kind="ClusterRole", name="reader")
    result = k8s.handler.apply(DELETE_RBAC, delete, k8s.ctx())
    assert result.snapshot_hash and result.snapshot_hash.startswith("sha256:")
    restore = RestoreObjectParams(cluster=CLUSTER, snapshot=result.snapshot)
    preview = k8s.handler.preview(RESTORE, restore, k8s.ctx(step=1))
    assert preview.target is not None and preview.target.version == result.snapshot_hash
    with pytest.raises(SnapshotRefused, match="was not previewed"):
        k8s.handler.apply(RESTORE, restore, k8s.ctx(step=1))
    edited = k8s.snapshots.load(result.snapshot)
    edited["object"]["rules"] = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    other = InMemorySnapshotStore()
    other.save(key=result.snapshot, document=edited)
    tampered = dataclasses.replace(k8s, snapshots=other)
    with pytest.raises(SnapshotRefused, match="was changed after its step wrote it"):
        tampered.handler.apply(RESTORE, restore, tampered.ctx(step=1, expected=preview.target))
    with pytest.raises(SnapshotRefused, match="recorded no content hash"):
        k8s.handler.undo(DELETE_RBAC, delete, dataclasses.replace(result, snapshot_hash=None), k8s.ctx())
    assert k8s.emu.get(RBAC["ClusterRole"], None, "reader") is None


@pytest.mark.parametrize(
    ("kind", "obj", "rule"),
    [
        ("ClusterRoleBinding", binding("system:node-proxier"), "system RBAC object"),
        ("ClusterRole", role("ClusterRole", "cluster-admin"), "cluster-admin"),
        ("ClusterRoleBinding", binding("admins", labels={"kubernetes.io/bootstrapping": "rbac-defaults"}),
         "bootstrapping label"),
        ("Role", role("Role", "extension-reader", "kube-system"), "protected namespace"),
    ],
)  # fmt: skip
def test_protected_rbac_objects_are_refused(k8s: Harness, kind: str, obj: dict[str, Any], rule: str) -> None:
    k8s.emu.put(RBAC[kind], obj)
    meta = obj["metadata"]
    params = DeleteRbacObjectParams(cluster=CLUSTER, kind=kind, name=meta["name"], namespace=meta.get("namespace"))
    with pytest.raises(GuardRefused, match=rule):
        k8s.handler.apply(DELETE_RBAC, params, k8s.ctx())
    assert k8s.emu.get(RBAC[kind], meta.get("namespace"), meta["name"]) is not None
    with pytest.raises(LookupError):
        k8s.snapshots.load(k8s.ctx().snapshot_key)  # refused before anything was stored


def test_a_modified_binding_goes_back_for_approval(k8s: Harness) -> None:
    obj = k8s.emu.put(RBAC["ClusterRoleBinding"], binding("dev-admin"))
    params = DeleteRbacObjectParams(cluster=CLUSTER, kind="ClusterRoleBinding", name="dev-admin")
    approved = k8s.handler.preview(DELETE_RBAC, params, k8s.ctx()).target
    k8s.emu.put(RBAC["ClusterRoleBinding"], {**obj, "subjects": SUBJECTS[:1]})
    with pytest.raises(TargetChanged):
        k8s.handler.apply(DELETE_RBAC, params, k8s.ctx(expected=approved))


def test_deleting_a_missing_object_fails_naming_it(k8s: Harness) -> None:
    params = DeleteRbacObjectParams(cluster=CLUSTER, kind="RoleBinding", name="gone", namespace="payments")
    with pytest.raises(PermanentFailure, match="RoleBinding payments/gone not found"):
        k8s.handler.apply(DELETE_RBAC, params, k8s.ctx())


# --- pods ---


def test_isolate_pod_labels_it_and_applies_a_deny_all_policy(k8s: Harness) -> None:
    k8s.emu.put(PODS, pod("miner"))
    params = IsolatePodParams(cluster=CLUSTER, namespace="payments", pod="miner")
    preview = k8s.handler.preview(ISOLATE, params, k8s.ctx())
    assert preview.changes["label"] == {ISOLATED_LABEL: "inc-0001"}
    assert k8s.emu.get(NETPOLS, "payments", policy_name("miner")) is None
    result = k8s.handler.apply(ISOLATE, params, k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.APPLIED
    assert k8s.emu.get(PODS, "payments", "miner")["metadata"]["labels"][ISOLATED_LABEL] == "inc-0001"
    policy = k8s.emu.get(NETPOLS, "payments", policy_name("miner"))
    assert policy["spec"] == {"podSelector": {"matchLabels": {ISOLATED_LABEL: "inc-0001"}},
                              "policyTypes": ["Ingress", "Egress"]}  # fmt: skip
    assert k8s.handler.apply(ISOLATE, params, k8s.ctx(step=1)).outcome is Outcome.NOOP
    assert k8s.handler.undo(ISOLATE, params, result, k8s.ctx()).outcome is Outcome.UNDONE
    assert ISOLATED_LABEL not in k8s.emu.get(PODS, "payments", "miner")["metadata"]["labels"]
    assert k8s.emu.get(NETPOLS, "payments", policy_name("miner")) is None


def test_release_pod_removes_label_and_policy_and_its_undo_isolates_again(k8s: Harness) -> None:
    k8s.emu.put(PODS, pod("miner"))
    isolate = IsolatePodParams(cluster=CLUSTER, namespace="payments", pod="miner")
    k8s.handler.apply(ISOLATE, isolate, k8s.ctx())
    release = ReleasePodParams(cluster=CLUSTER, namespace="payments", pod="miner")
    assert k8s.handler.preview(RELEASE, release, k8s.ctx(step=1)).changes["removeLabel"] == "inc-0001"
    released = k8s.handler.apply(RELEASE, release, k8s.ctx(step=1))
    assert released.outcome is Outcome.APPLIED and k8s.emu.get(NETPOLS, "payments", policy_name("miner")) is None
    assert k8s.handler.apply(RELEASE, release, k8s.ctx(step=2)).outcome is Outcome.NOOP
    assert k8s.handler.undo(RELEASE, release, released, k8s.ctx(step=1)).outcome is Outcome.UNDONE
    assert k8s.emu.get(NETPOLS, "payments", policy_name("miner")) is not None


def test_isolated_policies_are_found_by_label_selector(k8s: Harness) -> None:
    from kubernetes.client import NetworkingV1Api

    k8s.emu.put(PODS, pod("miner"))
    k8s.handler.apply(ISOLATE, IsolatePodParams(cluster=CLUSTER, namespace="payments", pod="miner"), k8s.ctx())
    api = NetworkingV1Api(k8s.server.api_client())
    assert len(api.list_namespaced_network_policy("payments", label_selector=f"{ISOLATED_LABEL}=inc-0001").items) == 1
    assert api.list_namespaced_network_policy("payments", label_selector=f"{ISOLATED_LABEL}=other").items == []


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease", "gatekeeper-system", "falco"])
def test_protected_namespaces_are_refused(kube, tmp_path, namespace: str) -> None:
    from kube_api import make_harness

    h = make_harness(kube, tmp_path, protected_namespaces=frozenset({"kube-system", "kube-public", "kube-node-lease",
                                                                       "gatekeeper-system", "falco"}))  # fmt: skip
    h.emu.put(PODS, pod("coredns", namespace=namespace))
    h.emu.put(DEPLOYMENTS, workload("Deployment", "coredns", namespace))
    for action, params in (
        (ISOLATE, IsolatePodParams(cluster=CLUSTER, namespace=namespace, pod="coredns")),
        (DELETE_POD, DeletePodParams(cluster=CLUSTER, namespace=namespace, pod="coredns")),
        (SCALE, ScaleToZeroParams(cluster=CLUSTER, namespace=namespace, kind="Deployment", name="coredns")),
    ):
        with pytest.raises(GuardRefused, match="protected namespace"):
            h.handler.apply(action, params, h.ctx())
    assert h.emu.get(PODS, namespace, "coredns") is not None


def test_delete_pod_preview_apply_noop_and_no_undo(k8s: Harness) -> None:
    k8s.emu.put(PODS, pod("miner"))
    params = DeletePodParams(cluster=CLUSTER, namespace="payments", pod="miner", grace_period_seconds=0)
    preview = k8s.handler.preview(DELETE_POD, params, k8s.ctx())
    assert "ReplicaSet/miner-owner replaces it" in preview.summary and k8s.emu.get(PODS, "payments", "miner")
    result = k8s.handler.apply(DELETE_POD, params, k8s.ctx())
    assert result.outcome is Outcome.APPLIED and k8s.emu.get(PODS, "payments", "miner") is None
    assert k8s.handler.apply(DELETE_POD, params, k8s.ctx()).outcome is Outcome.APPLIED  # the same step, retried
    assert k8s.handler.apply(DELETE_POD, params, k8s.ctx(step=5)).outcome is Outcome.NOOP
    with pytest.raises(PermanentFailure, match="cannot be undone"):
        k8s.handler.undo(DELETE_POD, params, result, k8s.ctx())


# --- workloads ---


def workload(kind: str, name: str, namespace: str = "payments", replicas: int = 3) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "serviceName": name,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
            "status": {"replicas": replicas}}  # fmt: skip


@pytest.mark.parametrize(("kind", "resource"), [("Deployment", DEPLOYMENTS), ("StatefulSet", STATEFULSETS)])
def test_scale_to_zero_and_back(k8s: Harness, kind: str, resource: Any) -> None:
    k8s.emu.put(resource, workload(kind, "api"))
    params = ScaleToZeroParams(cluster=CLUSTER, namespace="payments", kind=kind, name="api")
    preview = k8s.handler.preview(SCALE, params, k8s.ctx())
    assert preview.changes == {"spec.replicas": {"from": 3, "to": 0}}
    assert k8s.emu.get(resource, "payments", "api")["spec"]["replicas"] == 3
    result = k8s.handler.apply(SCALE, params, k8s.ctx(expected=preview.target))
    assert result.outcome is Outcome.APPLIED and result.undo == {"replicas": 3}
    assert k8s.emu.get(resource, "payments", "api")["spec"]["replicas"] == 0
    assert any(r.url.path.endswith("/scale") and r.method == "PATCH" for r in k8s.emu)
    assert k8s.handler.apply(SCALE, params, k8s.ctx(step=1)).outcome is Outcome.NOOP
    assert k8s.handler.undo(SCALE, params, result, k8s.ctx()).outcome is Outcome.UNDONE
    assert k8s.emu.get(resource, "payments", "api")["spec"]["replicas"] == 3


def test_a_status_update_does_not_invalidate_a_workload_approval(k8s: Harness) -> None:
    obj = k8s.emu.put(DEPLOYMENTS, workload("Deployment", "api"))
    params = ScaleToZeroParams(cluster=CLUSTER, namespace="payments", kind="Deployment", name="api")
    approved = k8s.handler.preview(SCALE, params, k8s.ctx()).target
    k8s.emu.put(DEPLOYMENTS, {**obj, "status": {"replicas": 2}})
    assert k8s.handler.apply(SCALE, params, k8s.ctx(expected=approved)).outcome is Outcome.APPLIED
