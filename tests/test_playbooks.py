"""Playbooks as shipped, and what matching makes of a Signal: steps, parameters, missing values, grouping.

Signals are built by hand with `Signal(...)`/`Targets(...)` so each test shows exactly what it feeds in.
`defender_signal` and `registry_signal` are imported by the other `test_playbooks_*` modules.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from remediation.actions import get_action
from remediation.plans import ApprovalMode, ApprovalPolicy, MissingParam, OnTimeout, Plan, PlannedStep
from remediation.playbooks import DEFAULT_PLAYBOOKS_DIR, PlaybookSet, check_playbooks, load_playbooks
from remediation.signals.model import Severity, Signal, Source, Targets

REPO_PLAYBOOKS = Path(__file__).resolve().parents[1] / "playbooks"
CLUSTER = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
DIGEST = "sha256:60cc59004e8e9bfdbfad641fd5dc34b9a0c67345768ba5d5d957214b686f4fcb"
NODE = "aks-nodepool1-12345678-vmss000000"
SECOPS = ("U000SECOPS1", "U000SECOPS2", "@secops-oncall")


def defender_signal(
    alert_type: str,
    *,
    severity: Severity = Severity.HIGH,
    extended: dict[str, str] | None = None,
    title: str = "",
    **targets: Any,
) -> Signal:
    return Signal(
        source=Source.DEFENDER,
        type=alert_type,
        id=f"defender:{alert_type}-{sorted(targets.items())}",
        time=datetime(2024, 11, 21, 10, 5, tzinfo=UTC),
        severity=severity,
        targets=Targets(**targets),
        title=title or alert_type,
        extended_properties=extended or {},
    )


def registry_signal(event: str = "ImagePushed", *, extended: dict[str, str] | None = None, **targets: Any) -> Signal:
    return Signal(
        source=Source.REGISTRY,
        type=f"Microsoft.ContainerRegistry.{event}",
        id=f"registry:{event}-{sorted(targets.items())}",
        time=datetime(2024, 11, 21, 10, 5, tzinfo=UTC),
        severity=Severity.INFORMATIONAL,
        targets=Targets(**targets),
        extended_properties=extended or {},
    )


@pytest.fixture(scope="module")
def shipped() -> PlaybookSet:
    return load_playbooks(DEFAULT_PLAYBOOKS_DIR)


def _only(plans: list[Plan]) -> Plan:
    assert len(plans) == 1, [plan.playbook for plan in plans]
    return plans[0]


def _steps(plan: Plan) -> list[tuple[str, dict[str, Any]]]:
    return [(step.action, dict(step.params)) for step in plan.steps]


# --- the shipped folder ----------------------------------------------------------------------------


def test_the_default_folder_is_the_repos_playbooks_folder() -> None:
    assert DEFAULT_PLAYBOOKS_DIR == REPO_PLAYBOOKS


def test_the_shipped_playbooks_load_without_errors(shipped: PlaybookSet) -> None:
    assert check_playbooks(DEFAULT_PLAYBOOKS_DIR) == []
    assert [playbook.name for playbook in shipped.playbooks] == [
        "dashboard-restrict-exposed",
        "miner-isolate-and-quarantine-high",
        "miner-isolate-and-quarantine",
        "node-cordon",
        "notify-alert-facts-low",
        "notify-alert-facts",
        "pod-isolate",
        "protected-namespace-notify",
        "rbac-delete-privileged-object",
        "rbac-notify-system-object",
        "registry-notify-pusher-not-allowed",
        "registry-quarantine-latest-in-prod",
        "registry-quarantine-overwritten-tag",
        "service-restrict-exposed",
        "workload-isolate-compromised",
    ]
    for playbook in shipped.playbooks:
        assert playbook.description
        assert playbook.file.parent == REPO_PLAYBOOKS
        assert shipped.get(playbook.name) is playbook
    assert shipped.get("no-such-playbook") is None


@pytest.mark.parametrize("alert_type", ["K8S_ClusterAdminBinding", "K8S_HighPrivilegesRole"])
def test_rbac_alerts_delete_the_offending_object_with_two_approvers(shipped: PlaybookSet, alert_type: str) -> None:
    signal = defender_signal(
        alert_type, cluster_resource_id=CLUSTER, rbac_kind="ClusterRoleBinding", rbac_name="dev-cluster-admin"
    )
    plan = _only(shipped.match(signal))
    assert plan.playbook == "rbac-delete-privileged-object"
    assert _steps(plan) == [
        (
            "kubernetes.delete_rbac_object",
            {"cluster": CLUSTER, "kind": "ClusterRoleBinding", "name": "dev-cluster-admin"},
        )
    ]
    assert plan.missing == ()
    assert plan.approval == ApprovalPolicy(
        mode=ApprovalMode.REQUIRED,
        approvers=SECOPS,
        min_approvals=2,
        timeout=timedelta(minutes=30),
        on_timeout=OnTimeout.ESCALATE,
        escalate_to="#secops-leads",
    )
    assert plan.notify == "#secops-alerts"
    assert plan.reason == f"{alert_type} (high) on aks-prod-weu matched playbook rbac-delete-privileged-object"


def test_a_namespaced_role_binding_is_deleted_in_its_namespace(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S_HighPrivilegesRole",
        cluster_resource_id=CLUSTER,
        rbac_kind="RoleBinding",
        rbac_name="ci:deployer",
        namespace="team-a",
    )
    assert _steps(_only(shipped.match(signal))) == [
        (
            "kubernetes.delete_rbac_object",
            {"cluster": CLUSTER, "kind": "RoleBinding", "name": "ci:deployer", "namespace": "team-a"},
        )
    ]


def test_system_rbac_objects_are_only_notified(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S_ClusterAdminBinding",
        cluster_resource_id=CLUSTER,
        rbac_kind="ClusterRoleBinding",
        rbac_name="system:masters-extra",
    )
    plan = _only(shipped.match(signal))
    assert plan.playbook == "rbac-notify-system-object"
    assert plan.approval.mode is ApprovalMode.AUTO
    assert _steps(plan) == [
        (
            "notify",
            {
                "message": f"K8S_ClusterAdminBinding on {CLUSTER}: ClusterRoleBinding system:masters-extra "
                "is a system object; review it by hand"
            },
        )
    ]


MINING_TYPES = [
    "K8S_MaliciousContainerImage",
    "K8S.NODE_DigitalCurrencyMining",
    "K8S.NODE_CryptoCoinMinerArtifacts",
    "K8S.NODE_CryptoCoinMinerExecution",
    "K8S.NODE_CryptoCoinMinerDownload",
]
HIGH_MINING = {"K8S_MaliciousContainerImage", "K8S.NODE_DigitalCurrencyMining"}
MINER_IMAGE = {
    "image": f"myregistry.azurecr.io/miner/xmrig:1.0@{DIGEST}",
    "registry_login_server": "myregistry.azurecr.io",
    "repository": "miner/xmrig",
    "tag": "1.0",
    "digest": DIGEST,
}
QUARANTINE = (
    "registry.quarantine_tag",
    {"registry": "myregistry.azurecr.io", "repository": "miner/xmrig", "tag": "1.0", "digest": DIGEST},
)


@pytest.mark.parametrize("alert_type", MINING_TYPES)
def test_a_miner_in_a_pod_is_isolated_and_its_image_from_our_registry_quarantined(
    shipped: PlaybookSet, alert_type: str
) -> None:
    signal = defender_signal(
        alert_type, cluster_resource_id=CLUSTER, node=NODE, namespace="crypto", pod="miner-1", **MINER_IMAGE
    )
    plan = _only(shipped.match(signal))
    high = alert_type in HIGH_MINING
    assert plan.playbook == ("miner-isolate-and-quarantine-high" if high else "miner-isolate-and-quarantine")
    assert _steps(plan) == [
        ("kubernetes.isolate_pod", {"cluster": CLUSTER, "namespace": "crypto", "pod": "miner-1"}),
        QUARANTINE,
    ]
    assert (plan.approval.min_approvals, plan.approval.timeout) == (2 if high else 1, timedelta(minutes=15))
    assert plan.group_window == timedelta(minutes=30)


@pytest.mark.parametrize("alert_type", MINING_TYPES)
def test_a_miner_with_no_pod_named_cordons_its_node(shipped: PlaybookSet, alert_type: str) -> None:
    signal = defender_signal(alert_type, cluster_resource_id=CLUSTER, node=NODE, **MINER_IMAGE)
    assert _steps(_only(shipped.match(signal))) == [
        ("kubernetes.cordon_node", {"cluster": CLUSTER, "node": NODE}),
        QUARANTINE,
    ]


def test_mining_on_a_docker_hub_image_only_contains(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S.NODE_DigitalCurrencyMining",
        cluster_resource_id=CLUSTER,
        node=NODE,
        image="docker.io/xmrig/xmrig:6.21",
        registry_login_server="docker.io",
        repository="xmrig/xmrig",
        tag="6.21",
    )
    assert _steps(_only(shipped.match(signal))) == [("kubernetes.cordon_node", {"cluster": CLUSTER, "node": NODE})]


@pytest.mark.parametrize(
    "alert_type",
    ["K8S_PrivilegedContainer", "K8S.NODE_PrivilegedContainerArtifacts", "K8S.NODE_ContainerSSH", "K8S_SensitiveMount"],
)
def test_risky_pods_are_isolated(shipped: PlaybookSet, alert_type: str) -> None:
    signal = defender_signal(
        alert_type, severity=Severity.LOW, cluster_resource_id=CLUSTER, namespace="ops", pod="debug-7c9f8d6b5-abcde"
    )
    plan = _only(shipped.match(signal))
    assert _steps(plan) == [
        ("kubernetes.isolate_pod", {"cluster": CLUSTER, "namespace": "ops", "pod": "debug-7c9f8d6b5-abcde"})
    ]
    assert plan.approval.on_timeout is OnTimeout.DENY


def test_kube_system_pods_are_not_isolated_but_notified(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S_PrivilegedContainer",
        severity=Severity.INFORMATIONAL,
        cluster_resource_id=CLUSTER,
        namespace="kube-system",
        pod="x",
    )
    plan = _only(shipped.match(signal))
    assert (plan.playbook, plan.approval.mode) == ("protected-namespace-notify", ApprovalMode.AUTO)
    [(action, params)] = _steps(plan)
    assert (action, params["channel"]) == ("notify", "#secops-notices")
    assert "in protected namespace kube-system" in params["message"]
    shell = defender_signal("K8S.NODE_ReverseShell", severity=Severity.MEDIUM, namespace="kube-system", pod="x")
    assert _steps(_only(shipped.match(shell)))[0][1]["channel"] == "#secops-alerts"


def test_latest_pushed_to_a_prod_repository_is_quarantined(shipped: PlaybookSet) -> None:
    signal = registry_signal(
        registry_login_server="myregistry.azurecr.io",
        repository="prod/payments-api",
        tag="latest",
        digest=DIGEST,
        image="myregistry.azurecr.io/prod/payments-api:latest",
        extended={"disallowed_tag": "true"},  # what the push policy marks from REMEDIATION_DISALLOWED_TAGS
    )
    plan = _only(shipped.match(signal))
    assert plan.playbook == "registry-quarantine-latest-in-prod"
    assert _steps(plan) == [
        (
            "registry.quarantine_tag",
            {"registry": "myregistry.azurecr.io", "repository": "prod/payments-api", "tag": "latest", "digest": DIGEST},
        )
    ]
    assert plan.reason == (
        "Microsoft.ContainerRegistry.ImagePushed (informational) on myregistry.azurecr.io/prod/payments-api:latest "
        "matched playbook registry-quarantine-latest-in-prod"
    )


@pytest.mark.parametrize(("repository", "tag"), [("dev/payments-api", "latest"), ("prod/payments-api", "1.4.2")])
def test_other_pushes_are_left_alone(shipped: PlaybookSet, repository: str, tag: str) -> None:
    signal = registry_signal(registry_login_server="myregistry.azurecr.io", repository=repository, tag=tag)
    assert shipped.match(signal) == []
    assert shipped.match(registry_signal("ImageDeleted", repository="prod/payments-api", tag="latest")) == []


def test_an_overwritten_prod_tag_is_quarantined_once_the_tag_index_says_so(shipped: PlaybookSet) -> None:
    targets = {"registry_login_server": "myregistry.azurecr.io", "repository": "prod/api", "tag": "1.4.2"}
    assert shipped.match(registry_signal(**targets, digest=DIGEST)) == []
    overwritten = registry_signal(**targets, digest=DIGEST, extended={"overwritten_digest": "sha256:" + "0" * 64})
    plan = _only(shipped.match(overwritten))
    assert plan.playbook == "registry-quarantine-overwritten-tag"
    assert _steps(plan) == [
        (
            "registry.quarantine_tag",
            {"registry": "myregistry.azurecr.io", "repository": "prod/api", "tag": "1.4.2", "digest": DIGEST},
        )
    ]


def test_an_exposed_dashboard_is_made_cluster_ip_with_two_approvers(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S_ExposedDashboard",
        cluster_resource_id=CLUSTER,
        namespace="kubernetes-dashboard",
        extended={"Resource name": "kubernetes-dashboard"},
    )
    plan = _only(shipped.match(signal))
    assert (plan.playbook, plan.approval.mode, plan.approval.min_approvals) == (
        "dashboard-restrict-exposed",
        ApprovalMode.REQUIRED,
        2,
    )
    assert _steps(plan) == [
        (
            "kubernetes.restrict_service",
            {
                "cluster": CLUSTER,
                "namespace": "kubernetes-dashboard",
                "service": "kubernetes-dashboard",
                "mode": "cluster_ip",
            },
        )
    ]


@pytest.mark.parametrize("alert_type", ["K8S_ExposedRedis", "K8S_ExposedService", "K8S_ExposedPostgresTrustAuth"])
def test_an_exposed_service_is_narrowed_to_private_ranges(shipped: PlaybookSet, alert_type: str) -> None:
    signal = defender_signal(alert_type, severity=Severity.LOW, cluster_resource_id=CLUSTER, namespace="cache")
    plan = _only(shipped.match(signal))
    assert (plan.playbook, plan.approval.min_approvals) == ("service-restrict-exposed", 1)
    [(action, params)] = _steps(plan)
    assert (action, params["mode"], list(params["source_ranges"])) == (
        "kubernetes.restrict_service",
        "source_ranges",
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
    )
    assert plan.missing == (MissingParam(step=0, param="service", field="extended_properties.Resource name"),)


def test_signals_no_playbook_is_written_for_match_nothing(shipped: PlaybookSet) -> None:
    assert shipped.match(defender_signal("K8S_SomethingNew", cluster_resource_id=CLUSTER)) == []
    assert shipped.match(registry_signal("ChartPushed", repository="prod/chart", tag="latest")) == []


# --- missing and refused values ------------------------------------------------------------------


def test_an_absent_required_field_becomes_a_missing_param_not_a_crash(shipped: PlaybookSet) -> None:
    signal = defender_signal("K8S_ClusterAdminBinding", cluster_resource_id=CLUSTER, rbac_kind="ClusterRoleBinding")
    plan = _only(shipped.match(signal))
    assert plan.missing == (MissingParam(step=0, param="name", field="targets.rbac_name"),)
    assert _steps(plan) == [("kubernetes.delete_rbac_object", {"cluster": CLUSTER, "kind": "ClusterRoleBinding"})]
    assert plan.missing[0].describe() == "step 1 parameter 'name' (from targets.rbac_name)"


def test_an_absent_optional_field_leaves_the_parameter_out(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S_ClusterAdminBinding", cluster_resource_id=CLUSTER, rbac_kind="ClusterRole", rbac_name="too-powerful"
    )
    plan = _only(shipped.match(signal))
    assert "namespace" not in plan.steps[0].params
    assert plan.missing == ()


def test_an_optional_value_the_action_refuses_is_left_out(shipped: PlaybookSet) -> None:
    # Defender may name a namespace beside a ClusterRoleBinding; the binding itself has none.
    signal = defender_signal(
        "K8S_ClusterAdminBinding",
        cluster_resource_id=CLUSTER,
        rbac_kind="ClusterRoleBinding",
        rbac_name="b",
        namespace="default",
    )
    plan = _only(shipped.match(signal))
    assert _steps(plan) == [
        ("kubernetes.delete_rbac_object", {"cluster": CLUSTER, "kind": "ClusterRoleBinding", "name": "b"})
    ]
    assert plan.missing == ()


def test_a_role_binding_without_a_namespace_asks_for_one(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S_HighPrivilegesRole", cluster_resource_id=CLUSTER, rbac_kind="RoleBinding", rbac_name="b"
    )
    plan = _only(shipped.match(signal))
    assert plan.missing == (MissingParam(step=0, param="namespace", field="targets.namespace"),)


def test_a_required_value_the_action_refuses_is_handed_to_a_person(shipped: PlaybookSet) -> None:
    signal = defender_signal("K8S_PrivilegedContainer", cluster_resource_id=CLUSTER, namespace="Not_DNS", pod="p1")
    plan = _only(shipped.match(signal))
    assert plan.missing == (MissingParam(step=0, param="namespace", field="targets.namespace"),)
    assert _steps(plan) == [("kubernetes.isolate_pod", {"cluster": CLUSTER, "pod": "p1"})]


def test_missing_params_are_numbered_by_plan_step(shipped: PlaybookSet) -> None:
    signal = defender_signal(
        "K8S.NODE_DigitalCurrencyMining",
        cluster_resource_id=CLUSTER,
        node=NODE,
        registry_login_server="myregistry.azurecr.io",
        repository="miner/xmrig",
        digest=DIGEST,
    )
    plan = _only(shipped.match(signal))
    assert plan.missing == (MissingParam(step=1, param="tag", field="targets.tag"),)


# --- grouping, plans as data --------------------------------------------------------------------------


def test_group_keys_follow_the_group_by_fields(shipped: PlaybookSet) -> None:
    def key(**targets: Any) -> str:
        signal = defender_signal("K8S_ClusterAdminBinding", rbac_kind="ClusterRoleBinding", **targets)
        return _only(shipped.match(signal)).group_key

    first = key(cluster_resource_id=CLUSTER, rbac_name="b1")
    assert first == key(cluster_resource_id=CLUSTER, rbac_name="b1", namespace="ignored-by-group-by")
    assert first != key(cluster_resource_id=CLUSTER, rbac_name="b2")
    canonical = json.dumps(
        {"targets.cluster_resource_id": CLUSTER, "targets.rbac_kind": "ClusterRoleBinding", "targets.rbac_name": "b1"},
        sort_keys=True,
        separators=(",", ":"),
    )
    assert first == f"rbac-delete-privileged-object|{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def test_without_group_by_keys_the_referenced_fields_group(shipped: PlaybookSet) -> None:
    playbook = shipped.get("registry-quarantine-latest-in-prod")
    assert playbook is not None
    assert playbook.group_by == ("targets.digest", "targets.registry_login_server", "targets.repository", "targets.tag")
    assert playbook.group_window == timedelta(minutes=15)


def test_plans_round_trip_through_json(shipped: PlaybookSet) -> None:
    signal = defender_signal("K8S_ClusterAdminBinding", cluster_resource_id=CLUSTER, rbac_kind="ClusterRoleBinding")
    plan = _only(shipped.match(signal))
    assert Plan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    assert plan.steps[0] == PlannedStep("kubernetes.delete_rbac_object", plan.steps[0].params)


# --- the invariant: a plan never carries a value its action refuses -----------------------------------

_TEXT = st.one_of(
    st.none(),
    st.sampled_from(
        ["ops", "kube-system", "Bad_Name", "a/b", "system:x", "myregistry.azurecr.io", "prod/api", "latest"]
    ),
    st.text(max_size=12),
)
_TYPES = [
    "K8S_ClusterAdminBinding",
    "K8S_HighPrivilegesRole",
    "K8S_PrivilegedContainer",
    "K8S_ExposedDashboard",
    "K8S_ExposedService",
    "K8S.NODE_Webshell",
    "K8S.NODE_KubeConfigAccess",
    "K8S_AdmissionController",
    *MINING_TYPES,
]


@settings(max_examples=300, deadline=None)
@given(
    alert_type=st.sampled_from(_TYPES),
    severity=st.sampled_from(list(Severity)),
    cluster=st.one_of(st.none(), st.just(CLUSTER), _TEXT),
    values=st.fixed_dictionaries(
        {name: _TEXT for name in ("namespace", "pod", "node", "rbac_kind", "rbac_name", "registry_login_server", "tag")}
    ),
)
def test_every_planned_step_validates_once_its_missing_params_are_supplied(
    shipped: PlaybookSet, alert_type: str, severity: Severity, cluster: str | None, values: dict[str, str | None]
) -> None:
    signal = defender_signal(alert_type, severity=severity, cluster_resource_id=cluster, repository="a/b", **values)
    for plan in shipped.match(signal):
        for index, step in enumerate(plan.steps):
            missing = {m.param for m in plan.missing if m.step == index}
            assert not missing & set(step.params)
            if not missing:
                get_action(step.action).validate(step.params)  # raises if a refused value slipped through


# --- references inside text, and refusals that no single reference explains ---------------------------

_ONE_STEP = """\
name: probe
description: One step.
on: {{source: defender, types: [K8S_HighPrivilegesRole]}}
steps:
  - action: {action}
    params: {params}
approval: {{approvers: [U000SECOPS1]}}
{extra}"""


def _probe(tmp_path: Path, action: str, params: str, extra: str = "") -> PlaybookSet:
    (tmp_path / "probe.yaml").write_text(_ONE_STEP.format(action=action, params=params, extra=extra))
    return load_playbooks(tmp_path)


def test_references_inside_text_interpolate_and_optional_ones_may_be_empty(tmp_path: Path) -> None:
    playbooks = _probe(tmp_path, "notify", "{message: 'Role ${targets.rbac_name} in [${targets.namespace?}]'}")
    [plan] = playbooks.match(defender_signal("K8S_HighPrivilegesRole", rbac_name="ci:admin"))
    assert plan.steps[0].params == {"message": "Role ci:admin in []"}
    [plan] = playbooks.match(defender_signal("K8S_HighPrivilegesRole", namespace="ops"))
    assert plan.steps[0].params == {}
    assert plan.missing == (MissingParam(step=0, param="message", field="targets.rbac_name"),)


def test_a_refusal_no_single_reference_explains_hands_back_every_referenced_value(tmp_path: Path) -> None:
    # The literal namespace passed at load; with kind ClusterRole from the Signal the pair is refused.
    params = "{cluster: aks1, kind: '${targets.rbac_kind}', name: '${targets.rbac_name}', namespace: default}"
    playbooks = _probe(tmp_path, "kubernetes.delete_rbac_object", params)
    [ok] = playbooks.match(defender_signal("K8S_HighPrivilegesRole", rbac_kind="Role", rbac_name="r"))
    assert ok.missing == ()
    [plan] = playbooks.match(defender_signal("K8S_HighPrivilegesRole", rbac_kind="ClusterRole", rbac_name="r"))
    assert plan.steps[0].params == {"cluster": "aks1", "namespace": "default"}
    assert plan.missing == (
        MissingParam(step=0, param="kind", field="targets.rbac_kind"),
        MissingParam(step=0, param="name", field="targets.rbac_name"),
    )


@pytest.mark.parametrize(
    "extended",
    [{}, {"note": 'quote " and backslash \\ and ünïcode'}, {"note": "100%s", "100% sure": "%d"}],
)
def test_group_keys_hash_exactly_the_canonical_json(tmp_path: Path, extended: dict[str, str]) -> None:
    keys = "[targets.rbac_name, extended_properties.note, extended_properties.100% sure, severity, source]"
    playbooks = _probe(tmp_path, "notify", "{message: hi}", extra=f"group_by: {{keys: {keys}}}\n")
    [plan] = playbooks.match(defender_signal("K8S_HighPrivilegesRole", rbac_name="r", extended=extended))
    values = {
        "targets.rbac_name": "r",
        "extended_properties.note": extended.get("note"),
        "extended_properties.100% sure": extended.get("100% sure"),
        "severity": "high",
        "source": "defender",
    }
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert plan.group_key == f"probe|{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"
