"""How the Kubernetes actions reach a cluster: retries, faults, tokens, kubeconfigs, settings, RBAC manifest."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from kube_api import CLUSTER, DROP, NODES, Fault, Harness, KubeServer, make_harness, node
from remediation.actions import kubernetes
from remediation.actions.catalogue import ACTIONS, UnknownAction
from remediation.actions.kubernetes import ClusterClients, CordonNodeParams, KubernetesSettings
from remediation.actions.kubernetes.connect import AKS_SERVER_SCOPE, token_api_client
from remediation.actions.runtime import GuardRefused, Outcome, PermanentFailure, TransientFailure
from remediation.settings import Settings, SettingsError

CORDON = "kubernetes.cordon_node"
PARAMS = CordonNodeParams(cluster=CLUSTER, node="n1")
MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "kubernetes" / "rbac.yaml"

pytest_plugins = ["kube_api"]  # the `kube` and `k8s` fixtures


def three_nodes(h: Harness) -> None:
    for name in ("n1", "n2", "n3"):
        h.emu.put(NODES, node(name))


def test_500s_then_success(k8s: Harness) -> None:
    three_nodes(k8s)
    k8s.emu.fail("GET", "/api/v1/nodes/n1", 500, 503)
    assert k8s.handler.apply(CORDON, PARAMS, k8s.ctx()).outcome is Outcome.APPLIED
    assert len(k8s.clock.sleeps) == 2


def test_429_retry_after_is_honoured(k8s: Harness) -> None:
    three_nodes(k8s)
    k8s.emu.fail("GET", "/api/v1/nodes", Fault(429, retry_after=7))
    assert k8s.handler.apply(CORDON, PARAMS, k8s.ctx()).outcome is Outcome.APPLIED
    assert k8s.clock.sleeps == [7.0]


def test_a_dropped_connection_is_retried(k8s: Harness) -> None:
    three_nodes(k8s)
    k8s.emu.fail("PATCH", "/api/v1/nodes/n1", DROP)
    assert k8s.handler.apply(CORDON, PARAMS, k8s.ctx()).outcome is Outcome.APPLIED


def test_retries_are_bounded_and_end_transient(k8s: Harness) -> None:
    three_nodes(k8s)
    k8s.emu.fail("GET", "/api/v1/nodes/n1", *[500] * 10)
    with pytest.raises(TransientFailure, match="read node n1 on aks-test: 500"):
        k8s.handler.apply(CORDON, PARAMS, k8s.ctx())
    assert len(k8s.clock.sleeps) == 3  # attempts=4


def test_other_4xx_fail_at_once_with_the_api_message(k8s: Harness) -> None:
    three_nodes(k8s)
    k8s.emu.fail("GET", "/api/v1/nodes/n1", 403)
    with pytest.raises(PermanentFailure, match="403 InjectedFault: injected 403") as caught:
        k8s.handler.apply(CORDON, PARAMS, k8s.ctx())
    assert not isinstance(caught.value, TransientFailure) and k8s.clock.sleeps == []


def test_a_missing_node_is_a_permanent_failure_naming_it(k8s: Harness) -> None:
    with pytest.raises(PermanentFailure, match="read node n1 on aks-test: 404 NotFound"):
        k8s.handler.apply(CORDON, PARAMS, k8s.ctx())


def test_connection_refused_until_the_server_comes_up(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = KubeServer()
    server.url = f"http://127.0.0.1:{port}"
    h = make_harness(server, tmp_path)
    original_sleep = h.clock.sleep

    def sleep_then_start(seconds: float) -> None:
        original_sleep(seconds)
        if len(h.clock.sleeps) == 2:  # refused twice, then the API server is up
            server.start(port=port)
            three_nodes(h)

    object.__setattr__(h.handler["kubernetes.cordon_node"].runtime.retry, "sleep", sleep_then_start)
    try:
        assert h.handler.apply(CORDON, PARAMS, h.ctx()).outcome is Outcome.APPLIED
    finally:
        server.stop()
    assert len(h.clock.sleeps) == 2


def test_kubeconfig_path_and_client_cache(kube: KubeServer, tmp_path: Path) -> None:
    h = make_harness(kube, tmp_path)
    three_nodes(h)
    h.handler.apply(CORDON, PARAMS, h.ctx())
    assert set(kube.authorizations()) == {"Bearer static-token"}
    aks_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/AKS-TEST"
    listed = frozenset({"aks-test", aks_id.lower(), "elsewhere"})
    kubeconfigs = {"aks-test": str(tmp_path / "kubeconfig")}
    clients = ClusterClients(settings=KubernetesSettings(kubeconfigs=kubeconfigs, clusters=listed))
    assert clients.get("aks-test") is clients.get("AKS-test") is clients.get(aks_id)  # by name, or a listed AKS id
    with pytest.raises(PermanentFailure, match="no kubeconfig configured for cluster 'elsewhere'"):
        clients.get("elsewhere")


class ShortLivedTokens:
    """A credential whose tokens live 10 minutes; it counts what it hands out."""

    def __init__(self, clock: list[float]) -> None:
        self.clock = clock
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.scopes.extend(scopes)
        return SimpleNamespace(token=f"token-{len(self.scopes)}", expires_on=self.clock[0] + 600)


def test_an_expiring_token_is_refreshed_through_the_hook(kube: KubeServer) -> None:
    from kubernetes.client import CoreV1Api

    kube.emulator.put(NODES, node("n1"))
    now = [time.time()]
    credential = ShortLivedTokens(now)
    core = CoreV1Api(token_api_client(server=kube.url, credential=credential, clock=lambda: now[0]))
    core.read_node("n1")
    core.read_node("n1")
    assert credential.scopes == [AKS_SERVER_SCOPE]  # still valid: no new token
    now[0] += 400  # within 5 minutes of expiry
    core.read_node("n1")
    assert credential.scopes == [AKS_SERVER_SCOPE] * 2
    assert kube.authorizations() == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_settings_from_env() -> None:
    env = {
        "REMEDIATION_PROTECTED_NAMESPACES": "falco, security ,",
        "REMEDIATION_MAX_UNSCHEDULABLE_FRACTION": "0.25",
        "REMEDIATION_KUBECONFIGS": '{"Local-Kind": "/home/me/.kube/kind"}',
        "REMEDIATION_K8S_REQUEST_TIMEOUT_SECONDS": "10",
    }
    settings = Settings.from_env(env, require_storage=False).kubernetes
    assert {"kube-system", "gatekeeper-system", "falco", "security"} <= settings.protected_namespaces
    assert settings.max_unschedulable_fraction == 0.25 and settings.request_timeout_seconds == 10
    assert settings.kubeconfigs == {"local-kind": "/home/me/.kube/kind"}
    assert Settings.from_env({}, require_storage=False).kubernetes.max_unschedulable_fraction == pytest.approx(1 / 3)
    with pytest.raises(SettingsError, match="REMEDIATION_KUBECONFIGS"):
        Settings.from_env({"REMEDIATION_KUBECONFIGS": "[1]"}, require_storage=False)
    with pytest.raises(SettingsError, match="REMEDIATION_MAX_UNSCHEDULABLE_FRACTION"):
        Settings.from_env({"REMEDIATION_MAX_UNSCHEDULABLE_FRACTION": "2"}, require_storage=False)


def test_every_catalogued_kubernetes_action_is_a_class_of_the_family(k8s: Harness) -> None:
    registered = {name for name in ACTIONS if name.startswith("kubernetes.")}
    assert registered == {cls.name for cls in kubernetes.ACTIONS} == set(k8s.handler.classes)
    assert all(ACTIONS[cls.name] is cls for cls in kubernetes.ACTIONS)


def test_a_wrong_action_or_params_are_refused(k8s: Harness) -> None:
    with pytest.raises(UnknownAction, match=r"unknown action 'registry\.quarantine_tag'"):
        k8s.handler.apply("registry.quarantine_tag", PARAMS, k8s.ctx())
    with pytest.raises(PermanentFailure, match="takes DrainNodeParams"):
        k8s.handler.apply("kubernetes.drain_node", PARAMS, k8s.ctx())


def granted_by(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (f"{group}/{resource}" if group else resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_rbac_manifests_grant_exactly_what_the_registry_declares_split_by_break_glass() -> None:
    def declared(*, break_glass: bool) -> set[tuple[str, ...]]:
        return {
            tuple(p.removeprefix("kubernetes: ").rsplit(" ", 1))
            for name, spec in ACTIONS.items()
            if name.startswith("kubernetes.") and spec.break_glass is break_glass
            for p in spec.permissions
        }

    role, binding = yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8"))
    assert granted_by(role) == declared(break_glass=False)
    assert binding["roleRef"]["name"] == role["metadata"]["name"] and binding["subjects"][0]["kind"] == "Group"
    rbac = {(r, v) for r, v in granted_by(role) if r.startswith("rbac.authorization.k8s.io/")}
    assert {v for _, v in rbac} == {"get", "delete"}  # no create, bind or escalate in everyday use

    [glass] = yaml.safe_load_all((MANIFEST.parent / "break-glass.yaml").read_text(encoding="utf-8"))
    assert glass["kind"] == "ClusterRole" and granted_by(glass) == declared(break_glass=True)  # the binding: off
    assert {"bind", "escalate", "create"} <= {v for _, v in granted_by(glass)}


def test_the_admission_policy_refuses_the_bot_every_protected_namespace_and_system_object() -> None:
    policy, binding = yaml.safe_load_all((MANIFEST.parent / "admission-policy.yaml").read_text(encoding="utf-8"))
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert (policy["kind"], binding["kind"]) == ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] and binding["spec"]["validationActions"] == [
        "Deny"
    ]
    spec = policy["spec"]
    assert spec["failurePolicy"] == "Fail" and spec["matchConditions"][0]["expression"].endswith(
        '"<ENTRA-GROUP-OBJECT-ID>" in request.userInfo.groups'
    )
    [rule] = spec["matchConstraints"]["resourceRules"]
    assert set(rule["operations"]) >= {"CREATE", "UPDATE", "DELETE"} and "*/*" in rule["resources"]
    cel = " ".join(v["expression"] for v in spec["validations"])
    for namespace in KubernetesSettings().protected_namespaces:
        assert f'"{namespace}"' in cel
    assert 'request.name.startsWith("system:")' in cel


def test_only_listed_clusters_are_reached_and_a_kubeconfig_serves_only_its_exact_key(tmp_path: Path) -> None:
    listed = "/subscriptions/s1/resourcegroups/rg/providers/microsoft.containerservice/managedclusters/aks-test"
    foreign = listed.replace("/s1/", "/s2/")
    path = str(tmp_path / "kubeconfig")
    by_name = ClusterClients(settings=KubernetesSettings(kubeconfigs={"aks-test": path}))
    with pytest.raises(GuardRefused, match=r"not in REMEDIATION_CLUSTERS \(unset: only the clusters named in"):
        by_name.get(listed)  # not listed, and a bare name no longer matches an AKS id
    allowed = KubernetesSettings(kubeconfigs={"aks-test": path}, clusters=frozenset({listed}))
    assert ClusterClients(settings=allowed)._kubeconfig_for(listed) == path  # listed: its name's kubeconfig
    with pytest.raises(GuardRefused, match=re.escape(f"cluster {foreign} is not in REMEDIATION_CLUSTERS") + "$"):
        ClusterClients(settings=allowed).get(foreign)
    with pytest.raises(GuardRefused, match=r"aks-test is not in REMEDIATION_CLUSTERS$"):
        ClusterClients(settings=allowed).get("aks-test")  # a list replaces the kubeconfig names
