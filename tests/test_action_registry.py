"""The action registry: conformance of every spec, the parameter models' rules, and the generated catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from remediation.actions import ACTIONS, ActionParams, UnknownAction, get_action
from remediation.actions.catalogue import ActionClass
from remediation.actions.docs import render_action_catalogue

CATALOGUE = Path(__file__).resolve().parents[1] / "docs" / "actions.md"
CLUSTER_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
DIGEST = "sha256:" + "ab" * 32
SPECS = sorted(ACTIONS.values(), key=lambda spec: spec.name)


def _ids(spec: ActionClass) -> str:
    return spec.name


def _error_fields(problem: ValidationError) -> set[str]:
    return {str(detail["loc"][0]) if detail["loc"] else "" for detail in problem.errors()}


# --- conformance: every spec, walked -----------------------------------------------------------


def test_the_registry_holds_the_actions_playbooks_name() -> None:
    assert set(ACTIONS) == {
        "registry.quarantine_tag",
        "registry.release_tag",
        "kubernetes.cordon_node",
        "kubernetes.uncordon_node",
        "kubernetes.drain_node",
        "kubernetes.delete_rbac_object",
        "kubernetes.restore_object",
        "kubernetes.isolate_pod",
        "kubernetes.release_pod",
        "kubernetes.scale_to_zero",
        "kubernetes.restrict_service",
        "kubernetes.delete_pod",
        "notify",
    }


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_every_spec_is_keyed_by_its_name_and_has_a_closed_frozen_params_model(spec: ActionClass) -> None:
    assert ACTIONS[spec.name] is spec
    assert issubclass(spec.Params, ActionParams)
    assert spec.Params.model_config.get("extra") == "forbid"
    assert spec.Params.model_config.get("frozen") is True
    assert spec.summary.strip()


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_every_spec_declares_permissions_in_the_documented_form(spec: ActionClass) -> None:
    assert spec.permissions
    for permission in spec.permissions:
        assert re.fullmatch(
            r"(kubernetes: [a-z0-9./]+ [a-z]+|azure: Microsoft\.[A-Za-z/]+|slack: [a-z:.]+)", permission
        )
    assert len(set(spec.permissions)) == len(spec.permissions)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_every_example_validates(spec: ActionClass) -> None:
    spec.validate(spec.example)


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_every_inverse_is_a_registered_action(spec: ActionClass) -> None:
    if spec.inverse is not None:
        assert spec.inverse in ACTIONS
        assert spec.inverse != spec.name


@pytest.mark.parametrize("spec", SPECS, ids=_ids)
def test_a_destructive_action_without_an_inverse_says_how_undo_goes(spec: ActionClass) -> None:
    if spec.destructive and spec.inverse is None:
        assert "undo" in spec.summary.lower()


def test_inverses_pair_up_as_designed() -> None:
    inverses = {spec.name: spec.inverse for spec in SPECS if spec.inverse}
    assert inverses == {
        "kubernetes.cordon_node": "kubernetes.uncordon_node",
        "kubernetes.uncordon_node": "kubernetes.cordon_node",
        "kubernetes.isolate_pod": "kubernetes.release_pod",
        "kubernetes.delete_rbac_object": "kubernetes.restore_object",
        "registry.quarantine_tag": "registry.release_tag",
    }


def test_get_action_returns_the_spec_and_names_the_known_ones_when_unknown() -> None:
    assert get_action("notify") is ACTIONS["notify"]
    with pytest.raises(UnknownAction) as caught:
        get_action("kubernetes.reboot_node")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == f"unknown action 'kubernetes.reboot_node' (known actions: {', '.join(sorted(ACTIONS))})"


# --- parameter models: the rules they enforce -------------------------------------------------------


def _params(action: str, **values: Any) -> Any:
    return get_action(action).validate(values)


@pytest.mark.parametrize("kind", ["RoleBinding", "Role"])
def test_namespaced_rbac_kinds_need_a_namespace(kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _params("kubernetes.delete_rbac_object", cluster="aks1", kind=kind, name="x")
    assert _error_fields(caught.value) == {"namespace"}
    assert f"required for kind {kind}" in str(caught.value)
    assert _params("kubernetes.delete_rbac_object", cluster="aks1", kind=kind, name="x", namespace="team-a")


@pytest.mark.parametrize("kind", ["ClusterRoleBinding", "ClusterRole"])
def test_cluster_rbac_kinds_refuse_a_namespace(kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _params("kubernetes.delete_rbac_object", cluster="aks1", kind=kind, name="x", namespace="default")
    assert _error_fields(caught.value) == {"namespace"}
    assert "cluster-wide" in str(caught.value)


def test_rbac_names_may_carry_colons_but_not_slashes() -> None:
    base = {"cluster": CLUSTER_ID, "kind": "ClusterRole"}
    assert _params("kubernetes.delete_rbac_object", **base, name="system:controller:job-controller")
    for bad in ("a/b", "100%", ".", "..", "", "x\n", "x" * 254):
        with pytest.raises(ValidationError):
            _params("kubernetes.delete_rbac_object", **base, name=bad)


def test_rbac_kind_is_one_of_the_four() -> None:
    with pytest.raises(ValidationError) as caught:
        _params("kubernetes.delete_rbac_object", cluster="aks1", kind="Pod", name="x")
    assert "kind" in _error_fields(caught.value)


@pytest.mark.parametrize("namespace", ["default", "kube-system", "a", "a" * 63, "team-1"])
def test_namespaces_are_dns_1123_labels(namespace: str) -> None:
    assert _params("kubernetes.isolate_pod", cluster="aks1", namespace=namespace, pod="p")


@pytest.mark.parametrize("namespace", ["Default", "team_a", "-a", "a-", "a.b", "a" * 64, "", "ns\n"])
def test_namespaces_that_are_not_dns_1123_labels_are_refused(namespace: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _params("kubernetes.isolate_pod", cluster="aks1", namespace=namespace, pod="p")
    assert _error_fields(caught.value) == {"namespace"}


def test_pod_and_node_names_are_dns_1123_subdomains() -> None:
    assert _params("kubernetes.delete_pod", cluster="aks1", namespace="n", pod="web-0.canary")
    assert _params("kubernetes.cordon_node", cluster="aks1", node="aks-nodepool1-12345678-vmss000000")
    for bad in ("Web", "web_0", "web..0", "web.", "a" * 254):
        with pytest.raises(ValidationError):
            _params("kubernetes.delete_pod", cluster="aks1", namespace="n", pod=bad)
        with pytest.raises(ValidationError):
            _params("kubernetes.cordon_node", cluster="aks1", node=bad)


@pytest.mark.parametrize("cluster", [CLUSTER_ID, "aks-prod-weu", "aks_prod.1"])
def test_clusters_are_aks_resource_ids_or_configured_names(cluster: str) -> None:
    assert _params("kubernetes.cordon_node", cluster=cluster, node="n1")


@pytest.mark.parametrize("cluster", ["", "/subscriptions/x/resourceGroups/y", "aks prod", CLUSTER_ID + "\n"])
def test_other_cluster_values_are_refused(cluster: str) -> None:
    with pytest.raises(ValidationError):
        _params("kubernetes.cordon_node", cluster=cluster, node="n1")


def test_drain_defaults_and_bounds() -> None:
    drain = _params("kubernetes.drain_node", cluster="aks1", node="n1")
    assert (drain.grace_period_seconds, drain.timeout_seconds, drain.max_concurrency) == (None, 600, 5)
    assert _params("kubernetes.drain_node", cluster="aks1", node="n1", grace_period_seconds=0, max_concurrency=50)
    for bad in ({"grace_period_seconds": -1}, {"timeout_seconds": 0}, {"max_concurrency": 0}, {"max_concurrency": 51}):
        with pytest.raises(ValidationError) as caught:
            _params("kubernetes.drain_node", cluster="aks1", node="n1", **bad)
        assert _error_fields(caught.value) == set(bad)


def test_scale_to_zero_takes_deployments_and_statefulsets_only() -> None:
    base = {"cluster": "aks1", "namespace": "shop", "name": "api"}
    assert _params("kubernetes.scale_to_zero", **base, kind="StatefulSet")
    with pytest.raises(ValidationError):
        _params("kubernetes.scale_to_zero", **base, kind="DaemonSet")


def test_quarantine_defaults_to_lock_and_checks_registry_names() -> None:
    quarantine = _params("registry.quarantine_tag", registry="myregistry.azurecr.io", repository="prod/api", tag="v1")
    assert (quarantine.mode, quarantine.digest) == ("lock", None)
    registry_id = CLUSTER_ID.replace(
        "Microsoft.ContainerService/managedClusters", "Microsoft.ContainerRegistry/registries"
    )
    assert _params(
        "registry.quarantine_tag", registry=registry_id, repository="a/b/c", tag="1.0", digest=DIGEST, mode="move"
    )
    for bad in (
        {"registry": "not a host"},
        {"repository": "Prod/API"},
        {"tag": "-v1"},
        {"digest": "sha256:short"},
        {"mode": "delete"},
    ):
        values = {"registry": "myregistry.azurecr.io", "repository": "prod/api", "tag": "v1"} | bad
        with pytest.raises(ValidationError) as caught:
            _params("registry.quarantine_tag", **values)
        assert _error_fields(caught.value) == set(bad)


def test_notify_checks_the_channel() -> None:
    assert _params("notify", message="hello", channel="C0123ABCD")
    assert _params("notify", message="hello", channel="@secops-oncall")
    with pytest.raises(ValidationError):
        _params("notify", message="hello", channel="secops")
    with pytest.raises(ValidationError):
        _params("notify", message="")


def test_models_refuse_unknown_parameters_and_are_frozen() -> None:
    with pytest.raises(ValidationError) as caught:
        _params("kubernetes.cordon_node", cluster="aks1", node="n1", force=True)
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
    cordon = _params("kubernetes.cordon_node", cluster="aks1", node="n1")
    with pytest.raises(ValidationError):
        cordon.node = "n2"


# --- the generated catalogue ---------------------------------------------------------------------


def test_docs_actions_md_is_the_rendered_catalogue() -> None:
    # On failure: python -m remediation.actions.docs
    assert CATALOGUE.read_text(encoding="utf-8") == render_action_catalogue()


def test_the_catalogue_has_one_row_per_action_with_its_parameters() -> None:
    rows = [line for line in render_action_catalogue().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == sorted(ACTIONS)
    drain = next(row for row in rows if row.startswith("| `kubernetes.drain_node`"))
    assert "`max_concurrency`: int = `5`, >= 1, <= 50" in drain
    assert "kubernetes: pods/eviction create" in drain
    quarantine = next(row for row in rows if row.startswith("| `registry.quarantine_tag`"))
    assert '`mode`: "lock" or "move" = `"lock"`' in quarantine


def test_the_registry_role_grants_exactly_what_the_catalogue_and_the_runtime_declare() -> None:
    from remediation.actions.container_registry.tags import RUNTIME_PERMISSIONS

    role = json.loads((Path(__file__).resolve().parents[1] / "deploy/azure/registry-remediator-role.json").read_text())
    declared = {
        p.removeprefix("azure: ")
        for spec in [*SPECS, type("Runtime", (), {"permissions": RUNTIME_PERMISSIONS})]
        for p in spec.permissions
        if p.startswith("azure: ")
    }
    granted = set(role["Actions"]) | set(role["DataActions"])
    assert granted == declared
    assert all("/repositories/" in action for action in role["DataActions"])
    assert not any("/repositories/" in action for action in role["Actions"])


def test_the_committed_permission_manifests_are_generated_from_the_catalogue() -> None:
    from remediation.actions.admission import render_admission_policy
    from remediation.actions.manifests import render_break_glass_role, render_cluster_role, render_registry_role

    root = Path(__file__).resolve().parents[1]
    regenerate = "regenerate with: python -m remediation.actions.docs"
    assert (root / "deploy/kubernetes/rbac.yaml").read_text(encoding="utf-8") == render_cluster_role(), regenerate
    glass = (root / "deploy/kubernetes/break-glass.yaml").read_text(encoding="utf-8")
    assert glass == render_break_glass_role(), regenerate
    admission = (root / "deploy/kubernetes/admission-policy.yaml").read_text(encoding="utf-8")
    assert admission == render_admission_policy(), regenerate
    registry_role = root / "deploy/azure/registry-remediator-role.json"
    assert registry_role.read_text(encoding="utf-8") == render_registry_role(), regenerate
