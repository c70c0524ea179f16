"""Every action of the catalogue, walked: declared completely, and run (preview, apply, undo) on the fakes.

Each action runs with its own catalogue example against kmock (Kubernetes) or the TLS ACR/ARM server,
through the `ActionSet` the executor uses. A new action needs a `WORLDS` entry that seeds what its
example names; the test that walks the catalogue fails until it has one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acr_server import REGISTRY_ID, AcrServer, FakeCredential, endpoints
from kube_api import (
    DEPLOYMENTS,
    NODES,
    PODS,
    RBAC,
    SERVICES,
    FakeClock,
    KubeServer,
    node,
    pod,
    service,
    write_kubeconfig,
)
from remediation.actions import CATALOGUE
from remediation.actions.base import NoRuntime
from remediation.actions.catalogue import ActionClass
from remediation.actions.container_registry import RegistryClients, RegistryRuntime
from remediation.actions.dispatch import ActionSet, ActionsNotBuildable
from remediation.actions.kubernetes import ClusterClients, KubernetesRuntime, KubernetesSettings
from remediation.actions.kubernetes.params import EXAMPLE_CLUSTER_ID
from remediation.actions.runtime import Outcome, StepContext
from remediation.retry import RetryPolicy
from remediation.store.snapshots import InMemorySnapshotStore

pytest_plugins = ["kube_api"]  # the `kube` fixture

EXAMPLE_LOGIN_SERVER = "myregistry.azurecr.io"
EXAMPLE_DIGEST = CATALOGUE_DIGEST = next(
    cls.example["digest"] for cls in CATALOGUE if cls.name == "registry.quarantine_tag"
)


@dataclass
class World:
    kube: KubeServer
    acr: AcrServer
    snapshots: InMemorySnapshotStore
    actions: ActionSet


def _nodes(w: World, example: dict[str, Any]) -> None:
    for name in (example["node"], "n2", "n3", "n4"):
        w.kube.emulator.put(NODES, node(name))
    w.kube.emulator.put(PODS, pod("web-1", namespace="payments", node_name=example["node"]))


def _uncordon(w: World, example: dict[str, Any]) -> None:
    for name in ("n2", "n3", "n4"):
        w.kube.emulator.put(NODES, node(name))
    w.kube.emulator.put(NODES, node(example["node"], unschedulable=True))


def _pod(w: World, example: dict[str, Any]) -> None:
    w.kube.emulator.put(PODS, pod(example["pod"], namespace=example["namespace"]))


def _released_pod(w: World, example: dict[str, Any]) -> None:
    _pod(w, example)
    params = w.actions.params("kubernetes.isolate_pod", {k: example[k] for k in ("cluster", "namespace", "pod")})
    w.actions.apply("kubernetes.isolate_pod", params, StepContext("inc-isolated", 0, w.snapshots))


def _binding(w: World, example: dict[str, Any]) -> None:
    w.kube.emulator.put(
        RBAC["ClusterRoleBinding"],
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": example["name"]},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
         "subjects": [{"kind": "User", "name": "mallory@example.com", "apiGroup": "rbac.authorization.k8s.io"}]},
    )  # fmt: skip


def _snapshot(w: World, example: dict[str, Any]) -> None:
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "restored-binding", "uid": "u-old", "resourceVersion": "7"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
               "subjects": [{"kind": "Group", "name": "audit", "apiGroup": "rbac.authorization.k8s.io"}]}  # fmt: skip
    target = {
        "kind": "ClusterRoleBinding",
        "name": "restored-binding",
        "namespace": None,
        "uid": "u-old",
        "version": "rv:7",
    }
    w.snapshots.save(key=example["snapshot"], document={"target": target, "object": binding})


def _deployment(w: World, example: dict[str, Any]) -> None:
    w.kube.emulator.put(
        DEPLOYMENTS,
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": example["name"], "namespace": example["namespace"], "generation": 1},
         "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "api"}},
                  "template": {"metadata": {"labels": {"app": "api"}},
                               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}},
    )  # fmt: skip


def _service(w: World, example: dict[str, Any]) -> None:
    w.kube.emulator.put(SERVICES, service(example["service"], namespace=example["namespace"]))


def _tag(w: World, example: dict[str, Any]) -> None:
    w.acr.push(example["repository"], example["tag"], EXAMPLE_DIGEST)


def _locked_tag(w: World, example: dict[str, Any]) -> None:
    _tag(w, example)
    params = w.actions.params("registry.quarantine_tag", {**example, "digest": EXAMPLE_DIGEST})
    w.actions.apply("registry.quarantine_tag", params, StepContext("inc-locked", 0, w.snapshots))


def _nothing(w: World, example: dict[str, Any]) -> None:
    pass


WORLDS: dict[str, Callable[[World, dict[str, Any]], None]] = {
    "kubernetes.cordon_node": _nodes,
    "kubernetes.uncordon_node": _uncordon,
    "kubernetes.drain_node": _nodes,
    "kubernetes.delete_rbac_object": _binding,
    "kubernetes.restore_object": _snapshot,
    "kubernetes.isolate_pod": _pod,
    "kubernetes.release_pod": _released_pod,
    "kubernetes.scale_to_zero": _deployment,
    "kubernetes.delete_pod": _pod,
    "kubernetes.restrict_service": _service,
    "registry.quarantine_tag": _tag,
    "registry.release_tag": _locked_tag,
    "notify": _nothing,
}


def _by_name(cls: ActionClass) -> str:
    return cls.name


@pytest.fixture
def world(kube: KubeServer, tmp_path: Path) -> Iterator[World]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server=kube.url)
    settings = KubernetesSettings(  # the examples name the cluster by kubeconfig and by AKS id: both listed
        kubeconfigs={"aks-prod-weu": kubeconfig},
        clusters=frozenset({"aks-prod-weu", EXAMPLE_CLUSTER_ID.lower()}),
        request_timeout_seconds=5,
    )
    clock = FakeClock()
    k8s_retry = RetryPolicy(attempts=2, max_seconds=10, sleep=clock.sleep, clock=clock)
    with AcrServer(tmp_path) as acr:
        clients = RegistryClients(credential=FakeCredential(), endpoints=endpoints(acr))
        runtimes = {
            KubernetesRuntime: lambda: KubernetesRuntime(
                clients=ClusterClients(settings=settings), settings=settings, retry=k8s_retry
            ),
            RegistryRuntime: lambda: RegistryRuntime.build(
                clients=clients, registries={EXAMPLE_LOGIN_SERVER: REGISTRY_ID}, retry=RetryPolicy(sleep=clock.sleep)
            ),
        }
        yield World(kube, acr, InMemorySnapshotStore(), ActionSet(runtimes=runtimes))


def test_every_catalogued_action_has_a_world_here() -> None:
    assert {cls.name for cls in CATALOGUE} == set(WORLDS)


@pytest.mark.parametrize("cls", CATALOGUE, ids=_by_name)
def test_every_action_previews_applies_and_undoes_its_own_example(cls: ActionClass, world: World) -> None:
    example = dict(cls.example)
    WORLDS[cls.name](world, example)
    params = world.actions.params(cls.name, example)
    ctx = StepContext("inc-conformance", 0, world.snapshots)

    preview = world.actions.preview(cls.name, params, ctx)
    assert preview.action == cls.name and preview.summary and not preview.noop
    if cls.destructive:
        assert preview.target is not None, "a destructive action binds its approval to a target version"
    applied = world.actions.apply(
        cls.name, params, StepContext("inc-conformance", 0, world.snapshots, expected=preview.target)
    )
    assert applied.outcome is Outcome.APPLIED and applied.action == cls.name
    if cls.destructive:
        assert world.snapshots.load("inc-conformance/step-0.json"), "a destructive action snapshots first"

    if not cls.reversible or cls.name == "registry.release_tag":
        return
    undone = world.actions.undo(cls.name, params, applied, ctx)
    assert undone.outcome in (Outcome.UNDONE, Outcome.NOOP)
    if cls.destructive:
        assert undone.outcome is Outcome.UNDONE, "a destructive action's undo restores what it changed"


def test_an_action_whose_runtime_nobody_provides_is_refused_when_the_set_is_built() -> None:
    with pytest.raises(ActionsNotBuildable, match=r"kubernetes\.cordon_node"):
        ActionSet(runtimes={RegistryRuntime: lambda: None})
    assert ActionSet(runtimes={}, catalogue=[c for c in CATALOGUE if c.Runtime is NoRuntime]).classes


def test_a_half_declared_action_fails_when_its_class_is_defined() -> None:
    from remediation.actions.kubernetes import KubernetesAction
    from remediation.actions.kubernetes.nodes import CordonNodeParams

    with pytest.raises(TypeError, match="does not declare permissions"):

        class NoPermissions(KubernetesAction[CordonNodeParams]):
            name = "kubernetes.no_permissions"
            summary = "x"
            Params = CordonNodeParams
            example: dict[str, Any] = {}
            destructive = False

            def preview_on(self, *args: Any) -> Any: ...
            def apply_on(self, *args: Any) -> Any: ...
            def undo_on(self, *args: Any) -> Any: ...

    with pytest.raises(TypeError, match="does not implement undo_on"):

        class NoUndo(KubernetesAction[CordonNodeParams]):
            name = "kubernetes.no_undo"
            summary = "x"
            Params = CordonNodeParams
            permissions = ("kubernetes: nodes get",)
            example: dict[str, Any] = {}
            destructive = False

            def preview_on(self, *args: Any) -> Any: ...
            def apply_on(self, *args: Any) -> Any: ...
